//! Writes made together: a batch of writes shares one transaction, so that concurrent writers
//! pay for one lock, one round of statements and one commit between them rather than one each,
//! while every write still becomes a revision of its own (or none, when it fails or changes
//! nothing), in order, each planned on top of the one before it.
//!
//! A write is a [`Step`]: it turns the latest state into the next one. The batch runs the steps
//! in the transaction of [`super::commit`] and tells each how it ended.

use std::time::Duration;

use tokio::time::Instant;

use super::commit::{Pending, WriteOptions};
use super::error::StoreError;
use super::handle::Store;
use super::state::{Advance, Key, State};

/// What a step makes of the latest state.
pub struct Plan {
    /// The latest state with the step's change made (its digest is sealed when staged).
    pub next: State,
    /// The entities the change touches; empty when it changes nothing.
    pub touched: Vec<Key>,
    /// The revision's message, unless the options give one.
    pub message: String,
}

/// One write of a batch.
pub trait Step: Send {
    fn options(&self) -> &WriteOptions;
    /// Turns `head`, the latest state, into the next one, which gets number `revision` if it is
    /// stored; `now` is its commit time. An error fails this step alone.
    fn plan(&mut self, head: &State, revision: i64, now: i64) -> Result<Plan, StoreError>;
}

/// A step with an answer for its caller: what the write produced, once its batch ended.
pub trait Job: Step {
    type Output: Send;
    /// Whether it rewrites the whole config (an apply, a rollback): such a write makes a batch
    /// of its own, so that its longer deadline does not hold up one-entity writes.
    fn whole(&self) -> bool;
    fn outcome(self, ended: Ended) -> Self::Output;
}

/// How a step ended when its batch committed.
#[derive(Debug)]
pub struct Ended {
    /// The revision the step made, or the latest one when it made none (a dry run, or a write
    /// that changed nothing).
    pub revision: i64,
    /// The state at the step's revision and what changed since the revision before; None when
    /// it made no revision.
    pub latest: Option<Advance>,
}

/// How long a commit may take once everything before it is done. Past that, the outcome is
/// unknown: the write may have been stored.
pub const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);

impl Store {
    /// Runs `steps` in order in one transaction on top of `base` (the caller's latest state,
    /// brought forward if another replica wrote since) and answers for each, in order. A step
    /// that fails stores nothing and leaves the others be; a database failure fails them all,
    /// and stores nothing when it happens before the commit. Everything up to the commit must
    /// finish by `deadline`, or nothing is stored.
    pub async fn run_batch(
        &self,
        base: &State,
        steps: &mut [&mut dyn Step],
        deadline: Instant,
    ) -> Vec<Result<Ended, StoreError>> {
        let staged = tokio::time::timeout_at(deadline, self.stage_all(base, steps)).await;
        let (pending, planned) = match staged {
            Ok(Ok(staged)) => staged,
            Ok(Err(error)) => return fail_all(steps.len(), &error),
            Err(_) => {
                let error = StoreError::Unavailable("the database did not answer in time".into());
                return fail_all(steps.len(), &error);
            }
        };
        let committed = tokio::time::timeout(COMMIT_TIMEOUT, self.commit(pending)).await;
        let mut committed = match committed {
            Ok(Ok(committed)) => committed.into_iter(),
            Ok(Err(error)) => return fail_planned(planned, &error),
            Err(_) => {
                let error = StoreError::Unavailable(
                    "the database did not confirm the commit in time; the change may or may not \
                     have been stored"
                        .into(),
                );
                return fail_planned(planned, &error);
            }
        };
        planned
            .into_iter()
            .map(|planned| match planned? {
                Planned::Stored => {
                    let latest = committed.next().ok_or_else(|| {
                        StoreError::Database("a staged revision went missing".into())
                    })?;
                    Ok(Ended {
                        revision: latest.state.revision,
                        latest: Some(latest),
                    })
                }
                Planned::Unstored(revision) => Ok(Ended {
                    revision,
                    latest: None,
                }),
            })
            .collect()
    }

    /// Opens the transaction and stages each step on top of the one before it.
    async fn stage_all(
        &self,
        base: &State,
        steps: &mut [&mut dyn Step],
    ) -> Result<(Pending, Vec<Result<Planned, StoreError>>), StoreError> {
        let mut pending = self.begin_write(base).await?;
        let planned = steps
            .iter_mut()
            .map(|step| stage(&mut pending, &mut **step))
            .collect();
        Ok((pending, planned))
    }
}

/// What staging a step did, before the commit.
enum Planned {
    Stored,
    /// Nothing staged; the latest revision then.
    Unstored(i64),
}

fn stage(pending: &mut Pending, step: &mut dyn Step) -> Result<Planned, StoreError> {
    pending.check(step.options())?;
    let Plan {
        next,
        touched,
        message,
    } = step.plan(pending.head(), pending.next_revision(), pending.now)?;
    match pending.stage(next, touched, message, step.options())? {
        Some(_) => Ok(Planned::Stored),
        None => Ok(Planned::Unstored(pending.head().revision)),
    }
}

fn fail_all(steps: usize, error: &StoreError) -> Vec<Result<Ended, StoreError>> {
    (0..steps).map(|_| Err(error.clone())).collect()
}

/// Every step that had not failed by itself fails with `error`.
fn fail_planned(
    planned: Vec<Result<Planned, StoreError>>,
    error: &StoreError,
) -> Vec<Result<Ended, StoreError>> {
    planned
        .into_iter()
        .map(|planned| match planned {
            Ok(_) => Err(error.clone()),
            Err(own) => Err(own),
        })
        .collect()
}
