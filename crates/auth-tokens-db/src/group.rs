//! Group commit for SQLite: an SQLite file syncs its log once per commit
//! (`synchronous=full`), and every statement is a hand-over to the driver's thread, so writes
//! committed one by one are bound by the disk's sync and the hand-overs. The jobs that arrive
//! while a commit is in flight are committed together in the next transaction, each still
//! decided by its own statements, and each caller answered only once that transaction is
//! durable.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use auth_service::{BackendError, Error, Result};
use tokio::sync::{mpsc, oneshot};

/// What commits a batch: one outcome per job, in order.
pub(crate) type CommitFn<J, O> = Box<
    dyn for<'a> Fn(&'a [J]) -> Pin<Box<dyn Future<Output = Result<Vec<O>>> + Send + 'a>>
        + Send
        + Sync,
>;

type Waiting<J, O> = (J, oneshot::Sender<std::result::Result<O, String>>);

/// A task that commits the jobs sent to it in batches.
pub(crate) struct GroupCommit<J, O> {
    jobs: mpsc::UnboundedSender<Waiting<J, O>>,
}

impl<J, O> Clone for GroupCommit<J, O> {
    fn clone(&self) -> Self {
        Self {
            jobs: self.jobs.clone(),
        }
    }
}

/// Most jobs per transaction.
const MAX_BATCH: usize = 256;
/// The longest a job waits for others to share its commit (the timer rounds it up to its next
/// tick, about a millisecond); only while jobs arrive together.
const GATHER: Duration = Duration::from_micros(500);

impl<J: Send + 'static, O: Send + 'static> GroupCommit<J, O> {
    /// Starts the task (inside a Tokio runtime; `None` outside one).
    pub(crate) fn start(commit: CommitFn<J, O>) -> Option<Self> {
        let handle = tokio::runtime::Handle::try_current().ok()?;
        let (jobs, mut queue) = mpsc::unbounded_channel::<Waiting<J, O>>();
        handle.spawn(async move {
            let mut last = 0;
            while let Some(first) = queue.recv().await {
                let mut batch = vec![first];
                // Several jobs were committed together last time: the clients are busy. Wait
                // (without spinning) for as many again, at most about a timer tick, so they
                // share this sync too, instead of splitting into smaller commits.
                if last > 1 {
                    let deadline = tokio::time::Instant::now() + GATHER;
                    while batch.len() < last {
                        match tokio::time::timeout_at(deadline, queue.recv()).await {
                            Ok(Some(job)) => batch.push(job),
                            _ => break,
                        }
                    }
                }
                while batch.len() < MAX_BATCH {
                    match queue.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                last = batch.len();
                let (jobs, answers): (Vec<J>, Vec<_>) = batch.into_iter().unzip();
                match commit(&jobs).await {
                    Ok(outcomes) => {
                        for (answer, outcome) in answers.into_iter().zip(outcomes) {
                            let _ = answer.send(Ok(outcome));
                        }
                    }
                    Err(e) => {
                        let message = e.to_string();
                        for answer in answers {
                            let _ = answer.send(Err(message.clone()));
                        }
                    }
                }
            }
        });
        Some(Self { jobs })
    }

    /// Commits `job` with whatever else is waiting; `what` names it in errors.
    pub(crate) async fn submit(&self, job: J, what: &str) -> Result<O> {
        let failed = |m: String| Error::Backend(BackendError::message(format!("{what}: {m}")));
        let (done, answer) = oneshot::channel();
        self.jobs
            .send((job, done))
            .map_err(|_| failed("the group commit task has stopped".into()))?;
        answer
            .await
            .map_err(|_| failed("the group commit task has stopped".into()))?
            .map_err(failed)
    }
}
