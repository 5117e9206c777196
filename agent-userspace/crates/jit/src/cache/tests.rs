use std::time::{Duration, SystemTime};

use super::*;

#[derive(Debug)]
struct V(SystemTime, u32);
impl Expiring for V {
    fn expires_at(&self) -> SystemTime {
        self.0
    }
}

#[derive(Debug, PartialEq)]
enum E {
    Down,
    Withdrawn(Withdrawn),
}
impl From<Withdrawn> for E {
    fn from(w: Withdrawn) -> E {
        E::Withdrawn(w)
    }
}

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000)
}

async fn mint(
    cache: &RefreshCache<&'static str, V>,
    i: &InstanceId,
    connector: &str,
    n: u32,
) -> Result<Got<V>, E> {
    let exp = t0() + Duration::from_secs(3600);
    cache
        .get_or_mint(i, connector, &"s", t0(), || async move { Ok(V(exp, n)) })
        .await
}

/// A mint of value `n` on its own task that holds its slot: it says when it
/// has started, and finishes only when told to go.
async fn held_mint(
    cache: &Arc<RefreshCache<&'static str, V>>,
    i: &InstanceId,
    n: u32,
) -> (
    tokio::task::JoinHandle<Result<Got<V>, E>>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let (cache, i) = (cache.clone(), i.clone());
    let minting = tokio::spawn(async move {
        let exp = t0() + Duration::from_secs(60);
        cache
            .get_or_mint(&i, "github", &"s", t0(), || async move {
                started_tx.send(()).unwrap();
                go_rx.await.unwrap();
                Ok::<_, E>(V(exp, n))
            })
            .await
    });
    started_rx.await.unwrap();
    (minting, go_tx)
}

#[tokio::test]
async fn reuses_until_the_margin_then_mints_again() {
    let cache: RefreshCache<&str, V> = RefreshCache::new(Duration::from_secs(300));
    let i = InstanceId::new("a", "1");
    let exp = t0() + Duration::from_secs(3600);
    let got = cache
        .get_or_mint(&i, "c", &"s", t0(), || async { Ok::<_, E>(V(exp, 1)) })
        .await
        .unwrap();
    assert!(got.minted && got.value.1 == 1 && got.replaced.is_none());
    let got = cache
        .get_or_mint(&i, "c", &"s", t0() + Duration::from_secs(3000), || async {
            Ok::<_, E>(V(exp, 2))
        })
        .await
        .unwrap();
    assert!(!got.minted && got.value.1 == 1);
    // 3400 s in, 200 s are left: inside the 300 s margin.
    let got = cache
        .get_or_mint(&i, "c", &"s", t0() + Duration::from_secs(3400), || async {
            Ok::<_, E>(V(exp, 3))
        })
        .await
        .unwrap();
    assert!(got.minted && got.value.1 == 3);
    assert_eq!(got.replaced.map(|r| r.1), Some(1));
}

#[tokio::test]
async fn keys_and_instances_are_separate_and_taken_together() {
    let cache: RefreshCache<&str, V> = RefreshCache::new(Duration::from_secs(0));
    let a = InstanceId::new("a", "1");
    let b = InstanceId::new("a", "2");
    let exp = t0() + Duration::from_secs(60);
    for (i, k, n) in [(&a, "x", 1), (&a, "y", 2), (&b, "x", 3)] {
        cache
            .get_or_mint(i, "c", &k, t0(), || async move { Ok::<_, E>(V(exp, n)) })
            .await
            .unwrap();
    }
    let mut taken: Vec<u32> = cache.take_instance(&a).await.iter().map(|v| v.1).collect();
    taken.sort();
    assert_eq!(taken, [1, 2]);
    assert_eq!(cache.len(), 1);
    assert!(cache.take_instance(&a).await.is_empty());
}

#[tokio::test]
async fn a_failed_mint_caches_nothing() {
    let cache: RefreshCache<&str, V> = RefreshCache::new(Duration::from_secs(0));
    let i = InstanceId::new("a", "1");
    let got = cache
        .get_or_mint(&i, "c", &"s", t0(), || async { Err::<V, _>(E::Down) })
        .await;
    assert_eq!(got.err(), Some(E::Down));
    assert!(cache.take_instance(&i).await.is_empty());
}

#[tokio::test]
async fn a_cut_takes_only_that_connectors_values_of_the_agent_and_its_sub_agents() {
    let cache: RefreshCache<&str, V> = RefreshCache::new(Duration::from_secs(0));
    let bot = InstanceId::new("bot", "1");
    let child = InstanceId::new("lead/bot", "2");
    let other = InstanceId::new("other", "3");
    let lead = InstanceId::new("lead", "4");
    let mut n = 0;
    for i in [&bot, &child, &other, &lead] {
        for c in ["github", "aws-s3"] {
            n += 1;
            mint(&cache, i, c, n).await.unwrap();
        }
    }
    let mut taken: Vec<u32> = cache
        .cut_connector("bot", "github")
        .await
        .iter()
        .map(|v| v.1)
        .collect();
    taken.sort();
    // bot's and lead/bot's github values; not aws-s3, not other or lead.
    assert_eq!(taken, [1, 3]);
    assert_eq!(cache.len(), 6);
}

#[tokio::test]
async fn nothing_is_minted_for_a_cut_connector_until_it_is_restored() {
    let cache: RefreshCache<&str, V> = RefreshCache::new(Duration::from_secs(0));
    let bot = InstanceId::new("bot", "1");
    mint(&cache, &bot, "github", 1).await.unwrap();
    assert_eq!(cache.cut_connector("bot", "github").await.len(), 1);
    let refused = mint(&cache, &bot, "github", 2).await.unwrap_err();
    assert_eq!(
        refused,
        E::Withdrawn(Withdrawn {
            instance: "bot/1".into(),
            connector: "github".into()
        })
    );
    let sub = InstanceId::new("bot/helper", "9");
    assert!(
        mint(&cache, &sub, "github", 3).await.is_err(),
        "a sub-agent of a cut agent"
    );
    assert!(
        mint(&cache, &bot, "aws-s3", 4).await.is_ok(),
        "another connector"
    );
    cache.restore_connector("bot", "github");
    let fresh = mint(&cache, &bot, "github", 5).await.unwrap();
    assert!(
        fresh.minted && fresh.value.1 == 5,
        "minted afresh, the old one gone"
    );
}

#[tokio::test]
async fn a_mint_in_flight_at_the_cut_is_waited_for_and_handed_back() {
    let cache: Arc<RefreshCache<&str, V>> = Arc::new(RefreshCache::new(Duration::from_secs(0)));
    let bot = InstanceId::new("bot", "1");
    let (minting, go_tx) = held_mint(&cache, &bot, 7).await;
    let cut = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.cut_connector("bot", "github").await })
    };
    tokio::task::yield_now().await;
    go_tx.send(()).unwrap();
    let taken = cut.await.unwrap();
    assert_eq!(
        taken.iter().map(|v| v.1).collect::<Vec<_>>(),
        [7],
        "the cut revokes it"
    );
    assert!(minting.await.unwrap().is_ok());
    assert!(cache.is_empty(), "nothing left behind for after a resume");
}

#[tokio::test]
async fn a_request_waiting_on_a_withdrawn_slot_mints_nothing() {
    let cache: Arc<RefreshCache<&str, V>> = Arc::new(RefreshCache::new(Duration::from_secs(0)));
    let bot = InstanceId::new("bot", "1");
    // First request: mints slowly, holding the slot.
    let (first, go_tx) = held_mint(&cache, &bot, 1).await;
    // Second request: already holds the slot, waits behind the first.
    let second = {
        let (cache, bot) = (cache.clone(), bot.clone());
        tokio::spawn(async move { mint(&cache, &bot, "github", 2).await })
    };
    tokio::task::yield_now().await;
    let taken = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.take_instance(&bot).await })
    };
    tokio::task::yield_now().await;
    go_tx.send(()).unwrap();
    assert!(first.await.unwrap().is_ok());
    assert_eq!(taken.await.unwrap().len(), 1);
    // Either the second request found the slot withdrawn, or it got the
    // first one's value before the take; it never minted its own.
    match second.await.unwrap() {
        Err(E::Withdrawn(_)) => {}
        Ok(got) => assert!(!got.minted && got.value.1 == 1),
        Err(e) => panic!("{e:?}"),
    }
    assert!(cache.is_empty());
}
