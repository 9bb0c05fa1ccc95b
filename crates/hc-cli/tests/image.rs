//! The image, built as scripts/build-image.sh builds it (buildah, the Dockerfile's `runtime`
//! stage, no Docker engine), from this test build's binary: the smoke test inside it passes, the
//! archive reads back as OCI and as Docker archive, and its one layer holds exactly the binary,
//! the libraries `ldd` names, the CA certificates and the passwd/group/nsswitch files. CI runs
//! the same script on the release build and checks its size (`.ci/run`).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

fn sh(script: &str) -> String {
    let o = Command::new("sh").args(["-c", script]).output().unwrap();
    assert!(o.status.success(), "{script}: {o:?}");
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn root_image_builds_runs_and_reads_back() {
    hc_testkit::needs_root("buildah's vfs storage and chroot isolation");
    let bin = env!("CARGO_BIN_EXE_hc-cli");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = std::env::temp_dir().join(format!("hc-image-test-{}.tar", std::process::id()));
    let o = Command::new(root.join("scripts/build-image.sh"))
        .args(["--binary", bin, "--out", out.to_str().unwrap()])
        .args(["--name", "localhost/hc-cli:test"])
        .env("STEP_TIMEOUT", "120")
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/build-image.sh: {e}"));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success(),
        "build-image.sh failed (buildah and dnsmasq come from scripts/setup.sh):\n{said}"
    );
    let version = format!("hc-cli {}", env!("CARGO_PKG_VERSION"));
    for line in [
        version.as_str(),
        " udp kubernetes.default.svc.cluster.local. A -> 10.96.0.1 (",
        " tcp kubernetes.default.svc.cluster.local. A -> 10.96.0.1 (",
        "smoke: healthy, answers ['10.96.0.1']",
        "read back as oci-archive and docker-archive: ok",
    ] {
        assert!(said.contains(line), "missing {line:?}:\n{said}");
    }

    // The layout: one layer, exactly these files.
    let a = out.display();
    let index = sh(&format!("tar -xOf {a} index.json"));
    let index: serde_json::Value = serde_json::from_str(&index).unwrap();
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "localhost/hc-cli:test",
        "kind and containerd name the image from this"
    );
    let blob = |digest: &serde_json::Value| {
        format!(
            "blobs/sha256/{}",
            digest.as_str().unwrap().trim_start_matches("sha256:")
        )
    };
    let manifest = sh(&format!(
        "tar -xOf {a} {}",
        blob(&index["manifests"][0]["digest"])
    ));
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    let files = sh(&format!(
        "tar -xOf {a} {} | tar -tzv | awk '$1 !~ /^d/ {{ print $NF }}' | sed 's|^\\./||' | sort",
        blob(&layers[0]["digest"])
    ));
    let libs = sh(&format!(
        "ldd {bin} | awk '$2 == \"=>\" {{ print $3 }} $1 ~ /^\\// {{ print $1 }}' | sed 's|^/||'"
    ));
    let mut want: Vec<&str> = libs.lines().collect();
    want.extend([
        "etc/group",
        "etc/nsswitch.conf",
        "etc/passwd",
        "etc/ssl/certs/ca-certificates.crt",
        "usr/local/bin/hc-cli",
    ]);
    want.sort();
    assert_eq!(files.lines().collect::<Vec<_>>(), want);
    assert!(
        want.iter().any(|l| l.contains("libc.so")),
        "a glibc build: {want:?}"
    );

    // The configuration the Dockerfile gives: the agent's command as UID 0, port 9890.
    let config = sh(&format!(
        "tar -xOf {a} {}",
        blob(&manifest["config"]["digest"])
    ));
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    let c = &config["config"];
    assert_eq!(
        c["Entrypoint"],
        serde_json::json!(["/usr/local/bin/hc-cli"])
    );
    assert_eq!(
        c["Cmd"],
        serde_json::json!(["run", "--sweep-netns", "--proc-root=/host/proc"])
    );
    assert_eq!(c["User"], "0:0");
    assert!(c["ExposedPorts"].get("9890/tcp").is_some(), "{c}");
    std::fs::remove_file(&out).unwrap();
}
