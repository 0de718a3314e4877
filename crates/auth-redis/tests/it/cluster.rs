//! Redis Cluster specifics: keys really spread over the primaries (so every multi-key step
//! keeps to one slot, or the cluster would refuse it), a failover of every primary loses
//! nothing and the stores carry on, and a cluster that cannot be reached is a clear error.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_redis::{
    Redis, RedisApiKeyStore, RedisRateLimiter, RedisRevocationStore, RedisTokenBackend,
};
use auth_service::{
    ApiKeyOwner, ApiKeyRecord, ApiKeyStore, Error, IssueRequest, RateLimitPolicy, RateLimiter,
    RevocationQuery, RevocationStore, RotateOutcome, RotateRequest, TokenBackend, TokenKind,
    UserId,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_that_cannot_be_reached_is_a_clear_error() {
    let started = Instant::now();
    let err = Redis::connect_cluster(&["redis://127.0.0.1:1/"])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Backend(_)), "{err:?}");
    assert!(err.to_string().contains("Redis Cluster"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // Lazily: the first command fails the same way, without a panic.
    let lazy = Redis::open_cluster(&["redis://127.0.0.1:1/"]).unwrap();
    let err = lazy.ping().await.unwrap_err();
    assert!(matches!(err, Error::Backend(_)), "{err:?}");
}

/// Keys under `prefix` per primary, read from each node directly.
async fn keys_per_primary(seed: &str, prefix: &str) -> BTreeMap<String, usize> {
    let client = redis::Client::open(seed).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut counts = BTreeMap::new();
    for line in nodes.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.len() < 3 || !fields[2].contains("master") {
            continue;
        }
        let addr = fields[1].split('@').next().unwrap().to_owned();
        let mut node = redis::Client::open(format!("redis://{addr}/"))
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let mut cursor = 0u64;
        let mut n = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}*"))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut node)
                .await
                .unwrap();
            n += keys.len();
            if next == 0 {
                break;
            }
            cursor = next;
        }
        counts.insert(addr, n);
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_spread_over_every_primary() {
    let Some(redis) = crate::cluster().await else {
        return;
    };
    let tokens = RedisTokenBackend::new(redis.clone());
    let revocations = RedisRevocationStore::new(redis.clone());
    let limiter = RedisRateLimiter::new(redis.clone(), RateLimitPolicy::default());
    let keys = RedisApiKeyStore::new(redis.clone());
    let later = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    for i in 0..60 {
        let user = UserId::new(format!("{i}"));
        let pair = tokens
            .issue(&IssueRequest::new(user.clone()))
            .await
            .unwrap();
        tokens
            .verify(pair.access_token.expose_secret(), TokenKind::Access)
            .await
            .unwrap();
        revocations
            .revoke(&format!("jti-{i}"), later)
            .await
            .unwrap();
        revocations
            .start_session(
                &user,
                &format!("family-{i}"),
                later,
                &Default::default(),
                later,
            )
            .await
            .unwrap();
        limiter.acquire(&format!("login:{i}")).await.unwrap();
        let record = ApiKeyRecord::new(
            format!("key{i}"),
            ApiKeyOwner::User(user.clone()),
            format!("key {i}"),
            vec!["read".into()],
            "ak_live_test",
            time::OffsetDateTime::now_utc(),
        );
        keys.create(&record, &format!("hash-{i}")).await.unwrap();
        assert!(
            keys.roll(&record.id, &format!("hash-{i}-b"), later)
                .await
                .unwrap()
        );
    }
    let seed = crate::cluster_seeds().unwrap().remove(0);
    let counts = keys_per_primary(&seed, redis.prefix()).await;
    println!(
        "Redis Cluster: keys of 60 users' tokens, sessions, revocations, limits and API keys per primary: {counts:?}"
    );
    assert!(counts.len() >= 3, "three primaries: {counts:?}");
    assert!(
        counts.values().all(|&n| n > 0),
        "every primary holds some of the keys: {counts:?}"
    );
}

/// A cluster of three primaries and three replicas of this test's own (a failover would
/// disturb the tests sharing `AUTH_TEST_REDIS_CLUSTER_URL`), stopped on drop.
struct OwnCluster {
    dir: PathBuf,
    ports: Vec<u16>,
    nodes: Vec<Child>,
}

impl OwnCluster {
    /// Whether `redis-server` can be run here (the reason printed when not).
    fn available() -> bool {
        let found = Command::new("redis-server")
            .arg("--version")
            .output()
            .is_ok();
        if !found {
            auth_testkit::skip("redis-cluster", "redis-server is not installed");
        }
        found
    }

    /// Six (port, cluster bus port) pairs free now.
    /// Six nodes' ports and bus ports, below the ephemeral range: a client dials them before
    /// the cluster is up (`a_cluster_that_comes_up_later_is_used_as_soon_as_it_does`), and a
    /// dial of a port in that range can connect to itself and hold the port (CI, stop 40:
    /// "node … not ready").
    fn free_ports() -> Vec<(u16, u16)> {
        let mut ports = Vec::new();
        while ports.len() < 12 {
            let port = auth_testkit::free_port_outside_ephemeral();
            if !ports.contains(&port) {
                ports.push(port);
            }
        }
        ports.chunks(2).map(|pair| (pair[0], pair[1])).collect()
    }

    async fn start() -> Option<Self> {
        if !Self::available() {
            return None;
        }
        Some(Self::start_on(Self::free_ports()).await)
    }

    async fn start_on(ports: Vec<(u16, u16)>) -> Self {
        let dir = std::env::temp_dir().join(auth_testkit::unique("auth-redis-cluster"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cluster = Self {
            dir,
            ports: Vec::new(),
            nodes: Vec::new(),
        };
        for (port, bus) in ports {
            let child = Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args([
                    "--port",
                    &port.to_string(),
                    "--cluster-port",
                    &bus.to_string(),
                ])
                .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"])
                // The pairs stay as created: the test moves each primary's slots to its replica.
                .args(["--cluster-allow-replica-migration", "no"])
                .args(["--repl-diskless-sync-delay", "0"])
                .arg("--cluster-config-file")
                .arg(cluster.dir.join(format!("nodes-{port}.conf")))
                .arg("--dir")
                .arg(&cluster.dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            cluster.ports.push(port);
            cluster.nodes.push(child);
        }
        for &port in &cluster.ports {
            cluster.wait_for(port, |_| true).await;
        }
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(cluster.ports.iter().map(|p| format!("127.0.0.1:{p}")))
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .unwrap();
        assert!(
            created.status.success(),
            "{}",
            String::from_utf8_lossy(&created.stdout)
        );
        for &port in &cluster.ports {
            cluster
                .wait_for(port, |c| c.contains("cluster_state:ok"))
                .await;
        }
        cluster
    }

    fn seeds(&self) -> Vec<String> {
        self.ports
            .iter()
            .take(3)
            .map(|p| format!("redis://127.0.0.1:{p}/"))
            .collect()
    }

    async fn node(port: u16) -> Option<redis::aio::MultiplexedConnection> {
        redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .ok()?
            .get_multiplexed_async_connection()
            .await
            .ok()
    }

    async fn info(port: u16, section: &str) -> String {
        let Some(mut conn) = Self::node(port).await else {
            return String::new();
        };
        let cmd = if section == "cluster" {
            redis::cmd("CLUSTER").arg("INFO").clone()
        } else {
            redis::cmd("INFO").arg(section).clone()
        };
        cmd.query_async(&mut conn).await.unwrap_or_default()
    }

    async fn wait_for(&self, port: u16, ready: impl Fn(&str) -> bool) {
        let start = Instant::now();
        loop {
            if Self::node(port).await.is_some() && ready(&Self::info(port, "cluster").await) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "node {port} not ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The value of `field` in a node's `INFO replication`.
    async fn replication(port: u16, field: &str) -> String {
        Self::info(port, "replication")
            .await
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    /// Waits until the replica on `port` is in sync with its primary.
    async fn in_sync(port: u16) {
        let start = Instant::now();
        while Self::replication(port, "role").await != "slave"
            || Self::replication(port, "master_link_status").await != "up"
        {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "replica {port} not in sync"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Each replica in turn takes its primary's place (`CLUSTER FAILOVER`: the replica first
    /// catches up, so nothing written is lost), the cluster settling between two (the old
    /// primary a replica in sync, every node `cluster_state:ok`); returns how long each took.
    async fn fail_over_every_primary(&self) -> Vec<Duration> {
        let mut replicas = Vec::new();
        for &port in &self.ports {
            if Self::replication(port, "role").await == "slave" {
                replicas.push(port);
            }
        }
        let mut took = Vec::new();
        for port in replicas {
            Self::in_sync(port).await;
            let primary: u16 = Self::replication(port, "master_port")
                .await
                .parse()
                .unwrap();
            let start = Instant::now();
            let mut conn = Self::node(port).await.unwrap();
            let _: () = redis::cmd("CLUSTER")
                .arg("FAILOVER")
                .query_async(&mut conn)
                .await
                .unwrap();
            while Self::replication(port, "role").await != "master" {
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "no failover to {port}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            took.push(start.elapsed());
            Self::in_sync(primary).await;
            for &node in &self.ports {
                self.wait_for(node, |c| c.contains("cluster_state:ok"))
                    .await;
            }
        }
        took
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether the `i`th login key is locked out.
async fn locked(limiter: &RedisRateLimiter, i: usize) -> bool {
    !limiter
        .check(&format!("login:{i}"))
        .await
        .unwrap()
        .is_allowed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failover_of_every_primary_loses_nothing() {
    let Some(cluster) = OwnCluster::start().await else {
        return;
    };
    let redis = Redis::connect_cluster(&cluster.seeds())
        .await
        .unwrap()
        .with_prefix("auth:failover:");
    let tokens = RedisTokenBackend::new(redis.clone());
    let revocations = RedisRevocationStore::new(redis.clone());
    let policy =
        RateLimitPolicy::new(3, Duration::from_secs(300), Duration::from_secs(600)).unwrap();
    let limiter = RedisRateLimiter::new(redis.clone(), policy);
    let later = time::OffsetDateTime::now_utc() + time::Duration::hours(1);

    // State in every slot range: 30 sessions, 30 revocations, 30 locked-out keys.
    let mut pairs = Vec::new();
    for i in 0..30 {
        pairs.push(
            tokens
                .issue(&IssueRequest::new(UserId::new(format!("{i}"))))
                .await
                .unwrap(),
        );
        revocations
            .revoke(&format!("jti-{i}"), later)
            .await
            .unwrap();
        for _ in 0..3 {
            limiter.acquire(&format!("login:{i}")).await.unwrap();
        }
        assert!(locked(&limiter, i).await, "locked out before the failover");
    }

    // Traffic while the slots move: counted, not required to succeed.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let traffic = {
        let (stop, revocations) = (Arc::clone(&stop), revocations.clone());
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, 0u32);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let q = RevocationQuery::new("jti-0", UserId::new("0"), 0);
                match revocations.is_revoked(&q).await {
                    Ok(true) => ok += 1,
                    Ok(false) => panic!("a revocation was lost in the failover"),
                    Err(_) => failed += 1,
                }
            }
            (ok, failed)
        })
    };
    let took = cluster.fail_over_every_primary().await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = traffic.await.unwrap();
    assert_eq!(took.len(), 3, "three failovers");

    // After: everything written before is there, and the stores work on the new primaries.
    for i in 0..30 {
        let q = RevocationQuery::new(format!("jti-{i}").as_str(), UserId::new("0"), 0);
        assert!(
            revocations.is_revoked(&q).await.unwrap(),
            "revocation {i} kept"
        );
        assert!(locked(&limiter, i).await, "lockout {i} kept");
    }
    let mut rotated = 0;
    for pair in &pairs {
        tokens
            .verify(pair.access_token.expose_secret(), TokenKind::Access)
            .await
            .unwrap();
        if let RotateOutcome::Rotated { .. } = tokens
            .rotate(
                pair.refresh_token.expose_secret(),
                &RotateRequest::default(),
                &auth_service::AllowAll,
            )
            .await
            .unwrap()
        {
            rotated += 1;
        }
    }
    assert_eq!(rotated, 30, "every session rotates on the new primaries");
    // Single use still holds: 30 concurrent rotations of one token, one winner.
    let fresh = tokens
        .issue(&IssueRequest::new(UserId::new("race")))
        .await
        .unwrap();
    let refresh = fresh.refresh_token.expose_secret().to_owned();
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let (tokens, refresh) = (tokens.clone(), refresh.clone());
        tasks.push(tokio::spawn(async move {
            tokens
                .rotate(&refresh, &RotateRequest::default(), &auth_service::AllowAll)
                .await
        }));
    }
    let mut winners = 0;
    for t in tasks {
        if let Ok(RotateOutcome::Rotated { .. }) = t.await.unwrap() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
    println!(
        "Redis Cluster: every primary failed over in {took:?}; during it {ok} revocation checks answered, {failed} failed; after it 30/30 revocations and lockouts kept, 30/30 sessions rotated, 1 winner of 30 concurrent rotations"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_that_comes_up_later_is_used_as_soon_as_it_does() {
    if !OwnCluster::available() {
        return;
    }
    // An instance started before its cluster (a compose file starting both at once).
    let ports = OwnCluster::free_ports();
    let seeds: Vec<String> = ports
        .iter()
        .take(3)
        .map(|(p, _)| format!("redis://127.0.0.1:{p}/"))
        .collect();
    let redis = Redis::open_cluster(&seeds)
        .unwrap()
        .with_prefix("auth:later:");
    let revocations = RedisRevocationStore::new(redis.clone());
    let feed = auth_redis::RedisFeed::start(&redis);
    let q = RevocationQuery::new("jti-later", UserId::new("1"), 0);
    // Meanwhile: checks fail closed, nothing panics.
    assert!(matches!(
        revocations.is_revoked(&q).await,
        Err(Error::Backend(_))
    ));
    assert!(!auth_service::ChangeFeed::status(&feed).live);
    let cluster = OwnCluster::start_on(ports).await;
    let start = Instant::now();
    while redis.ping().await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "never connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connected_after = start.elapsed();
    let later = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    revocations.revoke("jti-later", later).await.unwrap();
    assert!(revocations.is_revoked(&q).await.unwrap());
    while !auth_service::ChangeFeed::status(&feed).live {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the feed never subscribed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "Redis Cluster started after the instance: checks refused until then, connected {connected_after:?} after the cluster was up, the feed subscribed {:?} after",
        start.elapsed()
    );
    drop(cluster);
}
