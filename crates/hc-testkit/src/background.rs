use std::future::Future;

use tokio::sync::oneshot;

/// A future running on a thread and current-thread runtime of its own, until dropped: then it
/// is stopped (and every task it spawned with it) and the thread joined. For test servers that
/// must outlive the caller's runtime, or run where there is none.
#[derive(Debug)]
pub(crate) struct Background {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Background {
    /// Runs `make()` (built inside the new runtime) until it ends or this is dropped.
    pub(crate) fn spawn<F, Fut>(make: F) -> Background
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                tokio::select! {
                    _ = make() => {}
                    _ = stop_rx => {}
                }
            });
        });
        Background {
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
