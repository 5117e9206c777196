mod common;

use std::sync::Arc;

use common::Fixture;

#[test]
fn many_threads_setting_and_getting_lose_no_writes_and_read_no_garbage() {
    let f = Fixture::new();
    let (_db, vault) = f.vault();
    let vault = Arc::new(vault);
    const THREADS: usize = 8;
    const WRITES: usize = 25;
    vault.set("shared", "token", b"shared-0-0").unwrap();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let vault = vault.clone();
            std::thread::spawn(move || {
                for i in 0..WRITES {
                    vault
                        .set(
                            &format!("own-{t}"),
                            "token",
                            format!("own-{t}-{i}").as_bytes(),
                        )
                        .unwrap();
                    vault
                        .set("shared", "token", format!("shared-{t}-{i}").as_bytes())
                        .unwrap();
                    // Whatever version we see must be one some writer wrote, intact.
                    let seen = vault.get("shared").unwrap();
                    let text = std::str::from_utf8(seen.expose()).unwrap();
                    assert!(text.starts_with("shared-"), "{text}");
                    let own = vault.get(&format!("own-{t}")).unwrap();
                    assert_eq!(own.expose(), format!("own-{t}-{i}").as_bytes());
                    vault.mark_used("shared", &format!("agent-{t}")).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let list = vault.list().unwrap();
    let shared = list.iter().find(|i| i.name == "shared").unwrap();
    assert_eq!(
        shared.version,
        1 + (THREADS * WRITES) as u64,
        "every set got its own version"
    );
    assert_eq!(shared.used_by.len(), THREADS);
    for t in 0..THREADS {
        let own = list.iter().find(|i| i.name == format!("own-{t}")).unwrap();
        assert_eq!(own.version, WRITES as u64);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tokio_tasks_share_one_vault() {
    let f = Fixture::new();
    let (_db, vault) = f.vault();
    let vault = Arc::new(vault);
    let mut tasks = Vec::new();
    for t in 0..16 {
        let vault = vault.clone();
        tasks.push(tokio::task::spawn_blocking(move || {
            let name = format!("task-{t}");
            vault.set(&name, "token", name.as_bytes()).unwrap();
            assert_eq!(vault.get(&name).unwrap().expose(), name.as_bytes());
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(vault.list().unwrap().len(), 16);
}

#[test]
fn readers_never_see_a_half_rotated_vault() {
    let f = Fixture::new();
    let (_db, vault) = f.vault();
    let vault = Arc::new(vault);
    for i in 0..10 {
        vault
            .set(&format!("s{i}"), "token", format!("v{i}").as_bytes())
            .unwrap();
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (vault, stop) = (vault.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) || reads == 0 {
                    for i in 0..10 {
                        let v = vault.get(&format!("s{i}")).unwrap();
                        assert_eq!(v.expose(), format!("v{i}").as_bytes());
                    }
                    reads += 1;
                }
            })
        })
        .collect();
    for _ in 0..5 {
        vault
            .rotate_key(cordon_vault::MasterKey::generate().unwrap())
            .unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
}
