//! Capability properties over random derivation trees: every derived grant
//! is within its parent, and a revoked grant (or anything derived from it)
//! never decides a check again.

use std::collections::HashMap;
use std::path::PathBuf;

use libos_kernel::caps::{Grant, GrantSpec, PatternName, Resource, Right};
use libos_kernel::syscall::{Need, SpawnImage, Syscall};
use libos_kernel::{Action, Actor, GrantId, Kernel, Pid, QuantumCommit, SpawnSpec, ToolCallRecord};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::support::{SPEC, lease_one, model_call};

const DIRS: [&str; 4] = ["", "a", "a/b", "c"];
const RIGHTS: [&str; 4] = ["read", "write", "read,write", "delete"];

fn random_spec(rng: &mut StdRng) -> GrantSpec {
    let dir = DIRS[rng.random_range(0..DIRS.len())];
    let resource = match rng.random_range(0..3) {
        0 if !dir.is_empty() => format!("fs:{dir}/x.txt"),
        _ if dir.is_empty() => "fs:**".to_string(),
        _ => format!("fs:{dir}/**"),
    };
    let mut text = format!("{} {resource}", RIGHTS[rng.random_range(0..RIGHTS.len())]);
    text.push_str([" allow", " allow", " ask", " deny"][rng.random_range(0..4)]);
    if rng.random_bool(0.6) {
        text.push_str(" delegable");
    }
    if rng.random_bool(0.3) {
        text.push_str(&format!(" uses={}", rng.random_range(1..5)));
    }
    GrantSpec::parse(&text).unwrap()
}

/// Spawns a child of the leased `parent` through the kernel call, asking for `wanted`.
fn spawn_child(kernel: &Kernel, image: &SpawnImage, wanted: Vec<GrantSpec>) -> Pid {
    let lease = lease_one(kernel);
    let commit = QuantumCommit {
        model_call: Some(model_call()),
        call: ToolCallRecord {
            call_id: "c".into(),
            tool: "spawn".into(),
            args: "{}".into(),
            rationale: None,
            carry: None,
        },
        checks: Vec::new(),
        action: Action::Syscall(Syscall::Spawn {
            image: Box::new(image.clone()),
            goal: "child".into(),
            grants: wanted,
            budget: None,
        }),
        seen: Vec::new(),
    };
    kernel.commit_quantum(&lease, &commit).unwrap();
    *kernel.children(lease.pid).unwrap().last().unwrap()
}

fn within(child: &Grant, parent: &Grant) -> bool {
    child.resource.within(&parent.resource)
        && parent.rights.is_superset(child.rights)
        && child.effect >= parent.effect
        && parent.delegable
        && match (parent.uses_left, child.uses_left) {
            (Some(p), Some(c)) => c <= p,
            (Some(_), None) => false,
            (None, _) => true,
        }
}

fn derived_grants_stay_within_their_parents_and_revocation_reaches_the_whole_subtree() {
    let mut derived = 0;
    let mut revoked_checks = 0;
    for seed in 0..40 {
        let mut rng = StdRng::seed_from_u64(seed);
        let kernel = Kernel::in_memory().unwrap();
        let digest = kernel.register_image("t", "1", SPEC).unwrap();
        let image =
            SpawnImage { digest: digest.clone(), name: "t".into(), grants: Vec::new(), budget: Default::default() };
        let roots: Vec<GrantSpec> = (0..4).map(|_| random_spec(&mut rng)).collect();
        let root = kernel
            .spawn_with_grants(
                &SpawnSpec {
                    image: digest,
                    goal: "root".into(),
                    workspace: PathBuf::from("/tmp"),
                    parent: None,
                    priority: 0,
                    actor: Actor::operator(),
                    budget: libos_kernel::budget::Budget::unlimited(),
                },
                &roots,
            )
            .unwrap();
        // Grow a tree: each new process is spawned by a random live one.
        // Only one process is runnable at a time (the spawner), so pause the rest.
        let mut procs = vec![root];
        for _ in 0..6 {
            let parent = procs[rng.random_range(0..procs.len())];
            for p in &procs {
                if *p != parent {
                    let _ = kernel.pause(*p, Actor::operator());
                }
            }
            let _ = kernel.resume(parent, Actor::operator());
            let wanted = (0..3).map(|_| random_spec(&mut rng)).collect();
            let child = spawn_child(&kernel, &image, wanted);
            kernel.pause(child, Actor::operator()).unwrap();
            procs.push(child);
        }
        let all: HashMap<GrantId, Grant> =
            procs.iter().flat_map(|p| kernel.caps(*p).unwrap()).map(|(g, _)| (g.id, g)).collect();
        for g in all.values() {
            if let Some(parent) = g.parent {
                derived += 1;
                assert!(within(g, &all[&parent]), "seed {seed}: grant {g:?} is not within {:?}", all[&parent]);
            }
        }

        // Revoke a random grant: neither it nor anything derived from it decides again.
        let ids: Vec<GrantId> = all.keys().copied().collect();
        let revoked = ids[rng.random_range(0..ids.len())];
        kernel.revoke(revoked, &Actor::operator()).unwrap();
        let descends = |mut g: GrantId| loop {
            if g == revoked {
                return true;
            }
            match all[&g].parent {
                Some(p) => g = p,
                None => return false,
            }
        };
        for p in &procs {
            for g in all.values().filter(|g| g.holder == *p) {
                let name = match &g.resource.name {
                    PatternName::Exact(n) => n.clone(),
                    PatternName::Subtree(d) if d.is_empty() => "x.txt".to_string(),
                    PatternName::Subtree(d) => format!("{d}/x.txt"),
                    PatternName::Any => "x.txt".to_string(),
                };
                let resource = Resource::fs(&name);
                for right in [Right::Read, Right::Write, Right::Delete] {
                    let auth = kernel.authorize(*p, &[Need::grant(resource.clone(), right)], None).unwrap();
                    if let Some(decider) = auth.checks[0].decision.grant {
                        assert!(!descends(decider), "seed {seed}: revoked grant {revoked} (or a descendant) decided");
                    }
                    revoked_checks += usize::from(descends(g.id));
                }
            }
        }
    }
    // The property was exercised, not vacuous.
    assert!(derived > 40 && revoked_checks > 40, "derived {derived}, checks against revoked grants {revoked_checks}");
}

libos_kernel::tests!(sync:
    derived_grants_stay_within_their_parents_and_revocation_reaches_the_whole_subtree,
);
