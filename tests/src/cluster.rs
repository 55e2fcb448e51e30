//! A whole gateway for one test: a fresh Postgres database, a control plane on it and N workers
//! connected to it, all ready to serve.

use std::time::Duration;

use crate::database::TestDatabase;
use crate::eventually;
use crate::http::{Admin, client, send, worker_revision};
use crate::topology::{ControlPlane, ControlPlaneOptions, Worker, WorkerOptions};

/// Long enough for a loaded CI machine, short enough to fail fast when something is broken.
pub const CONVERGE: Duration = Duration::from_secs(10);

/// What a cluster is started with beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    pub control_plane_args: Vec<String>,
    /// One entry per worker: the extra arguments it is started with.
    pub workers: Vec<Vec<String>>,
}

pub struct Cluster {
    // Field order is drop order: processes go before the database they use.
    pub workers: Vec<Worker>,
    pub control_plane: ControlPlane,
    pub admin: Admin,
    pub client: reqwest::Client,
    pub database: TestDatabase,
}

impl Cluster {
    pub async fn start(workers: usize) -> Cluster {
        Self::start_with_worker_args(workers, &[]).await
    }

    /// A cluster whose workers also get `worker_args`.
    pub async fn start_with_worker_args(workers: usize, worker_args: &[&str]) -> Cluster {
        let args: Vec<String> = worker_args.iter().map(|a| (*a).to_owned()).collect();
        Self::start_with(ClusterOptions {
            control_plane_args: Vec::new(),
            workers: vec![args; workers],
        })
        .await
    }

    /// A cluster with the control plane and each worker given their own extra arguments.
    pub async fn start_with(options: ClusterOptions) -> Cluster {
        let database = TestDatabase::create().await;
        let control_plane = ControlPlane::start_with(ControlPlaneOptions {
            database_url: Some(database.url.clone()),
            cwd: None,
            extra_args: options.control_plane_args,
        });
        let admin = Admin::new(&control_plane.admin_url());
        let sync_url = control_plane.sync_url();
        let workers = options
            .workers
            .into_iter()
            .enumerate()
            .map(|(i, extra_args)| {
                let mut options = WorkerOptions::new(
                    &format!("worker-{i}-{}", uuid::Uuid::new_v4().simple()),
                    &sync_url,
                );
                options.extra_args = extra_args;
                Worker::start_with(options)
            })
            .collect();
        let cluster = Cluster {
            workers,
            control_plane,
            admin,
            client: client(),
            database,
        };
        cluster.wait_ready().await;
        cluster
    }

    /// Waits until every worker reports ready (it serves a config).
    pub async fn wait_ready(&self) {
        for worker in &self.workers {
            eventually(&format!("{} ready", worker.node_id), CONVERGE, || async {
                let reply = send(self.client.get(worker.status_url("/readyz"))).await?;
                if reply.status == 200 {
                    Ok(())
                } else {
                    Err(format!("readyz {}", reply.status))
                }
            })
            .await;
        }
    }

    /// Waits until every worker answers `path` with `status` (and, when given, from `server`).
    pub async fn wait_served(
        &self,
        path: &str,
        status: u16,
        server: Option<&str>,
        within: Duration,
    ) {
        for worker in &self.workers {
            let what = format!(
                "{} serves {path} with {status} from {server:?}",
                worker.node_id
            );
            eventually(&what, within, || async {
                let reply = send(self.client.get(worker.url(path))).await?;
                let server_ok = server.is_none_or(|s| reply.server() == s);
                if reply.status == status && server_ok {
                    Ok(())
                } else {
                    Err(format!("{} {}", reply.status, reply.text))
                }
            })
            .await;
        }
    }

    /// Applies a whole config with `PUT /v1/config` and waits until every worker serves it;
    /// returns its revision.
    pub async fn apply(&self, config: &serde_json::Value) -> u64 {
        let reply = self.admin.put("/v1/config", config).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let revision = reply.body["revision"]
            .as_u64()
            .expect("the answer names the revision");
        self.wait_for_revision(revision).await;
        revision
    }

    /// Waits until every worker serves `revision` or a later one.
    pub async fn wait_for_revision(&self, revision: u64) {
        for worker in &self.workers {
            eventually("worker applied the config", CONVERGE, || async {
                let served = worker_revision(&self.client, worker).await?;
                if served >= revision {
                    Ok(())
                } else {
                    Err(format!("at {served}"))
                }
            })
            .await;
        }
    }
}
