//! Storage that refuses writes, over real HTTP: the SQLite file on a small tmpfs that the test
//! fills.
//!
//! Finding (issue 30): with the SQLite file on a full disk, 7,537 sign-ups answered 429
//! `rate_limited` while `/ready` said 200: the throttle's write failed and a throttle that cannot
//! be asked refuses as a rate limit. Now a write refused for space (or permission) answers 503
//! `storage_unavailable`, `/ready` answers 503 and says why, and both recover without a restart
//! once space is freed.
//!
//! The record of storage failures is per process, so this suite has a binary of its own.

use crate::common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use common::PASSWORD;

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(size: &str) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!(
            "auth-storage-{}-{}",
            std::process::id(),
            auth_testkit::unique("fs")
        ));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if out.status.success() {
            Ok(Self(dir))
        } else {
            let _ = std::fs::remove_dir(&dir);
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `path` until the file system is full; the bytes written.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 16 * 1024];
    let mut written = 0;
    while file.write_all(&chunk).is_ok() {
        written += chunk.len() as u64;
    }
    // The last partial chunk, byte by byte granularity is not needed: a few KiB may stay free.
    let _ = file.sync_all();
    written
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_says_storage_unavailable_and_recovers() {
    let fs = match Tmpfs::mount("4m") {
        Ok(fs) => fs,
        Err(why) => {
            auth_testkit::skip(
                "tmpfs",
                &format!("mounting a small tmpfs is not permitted here: {why}"),
            );
            return;
        }
    };
    let url = format!("sqlite://{}?mode=rwc", fs.0.join("auth.db").display());
    let s = common::Server::start(&[("DATABASE_URL", url.as_str())]).await;
    let register = |email: String| {
        s.send(
            s.post("/auth/register")
                .json(&json!({"email": email, "password": PASSWORD})),
        )
    };
    let first = register("before@example.com".into()).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(s.send(s.get("/ready")).await.status, 200);

    let filler = fs.0.join("filler");
    let written = fill(&filler);
    let mut answers = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..40 {
        let a = register(format!("during{i}@example.com")).await;
        let what = format!("{} {}", a.status, a.body["error"].as_str().unwrap_or(""));
        *answers.entry(what).or_default() += 1;
        if a.status != 201 {
            assert_eq!(a.status, 503, "{}", a.body);
            assert_eq!(a.body["error"], "storage_unavailable", "{}", a.body);
            assert_eq!(a.headers["retry-after"], "30");
        }
    }
    println!("disk full ({written} bytes of filler): 40 sign-ups -> {answers:?}");
    assert!(
        answers.keys().any(|k| k.starts_with("503")),
        "the full disk was noticed: {answers:?}"
    );
    assert!(
        !answers.keys().any(|k| k.starts_with("429")),
        "never said as a rate limit: {answers:?}"
    );
    let ready = s.send(s.get("/ready")).await;
    println!("disk full: /ready -> {} {}", ready.status, ready.body);
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(ready.body["storage"].is_string(), "{}", ready.body);

    // Space again: writes work at once, readiness within the failure's memory, no restart.
    std::fs::remove_file(&filler).unwrap();
    let again = register("after@example.com".into()).await;
    assert_eq!(again.status, 201, "{}", again.body);
    let freed = Instant::now();
    loop {
        let ready = s.send(s.get("/ready")).await;
        if ready.status == 200 {
            println!(
                "space freed: sign-up 201 at once, /ready 200 after {:.1?}",
                freed.elapsed()
            );
            break;
        }
        assert!(
            freed.elapsed() < Duration::from_secs(30),
            "ready again: {}",
            ready.body
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Finding (issue 30): on a read-only file the server started without a warning and answered
/// 429 to everything. Now it refuses to start, naming the file.
#[tokio::test]
async fn a_database_file_that_cannot_be_written_is_refused_at_start() {
    let fs = match Tmpfs::mount("1m") {
        Ok(fs) => fs,
        Err(why) => {
            auth_testkit::skip(
                "tmpfs",
                &format!("mounting a small tmpfs is not permitted here: {why}"),
            );
            return;
        }
    };
    let file = fs.0.join("auth.db");
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let db = auth_server::connect_with(&url, auth_server::SqliteDurability::Full)
        .await
        .unwrap();
    db.close().await.unwrap();
    let remount = Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&fs.0)
        .status()
        .unwrap();
    assert!(remount.success());
    let refused = auth_server::connect_with(&url, auth_server::SqliteDurability::Full)
        .await
        .unwrap_err()
        .to_string();
    println!("read-only file system: {refused}");
    assert!(refused.contains("DATABASE_URL"), "{refused}");
    assert!(refused.contains(&file.display().to_string()), "{refused}");
}
