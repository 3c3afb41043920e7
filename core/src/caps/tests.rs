//! Decisions, syntax and covering, on grants built in memory.

use super::*;

fn grant(id: i64, text: &str) -> Grant {
    let s = GrantSpec::parse(text).unwrap();
    Grant {
        id: GrantId(id),
        holder: Pid(1),
        resource: s.resource,
        rights: s.rights,
        effect: s.effect,
        uses_left: s.uses.map(i64::from),
        expires_at: None,
        delegable: s.delegable,
        parent: None,
        revoked_at: None,
        granted_by: Actor::Kernel,
        created_at: Timestamp(0),
    }
}

fn check(grants: &[&str], resource: &str, right: Right) -> (Effect, Option<i64>) {
    let gs: Vec<Grant> = grants.iter().enumerate().map(|(i, t)| grant(i as i64 + 1, t)).collect();
    let r = match ResourcePattern::parse(resource).unwrap().name {
        PatternName::Exact(n) => Resource::new(ResourcePattern::parse(resource).unwrap().kind, n),
        _ => Resource::new(ResourcePattern::parse(resource).unwrap().kind, ""),
    };
    let d = decide(&gs, &r, right);
    (d.effect, d.grant.map(GrantId::get))
}

#[test]
fn the_most_specific_pattern_decides_then_the_strictest_effect() {
    use Effect::*;
    type Case<'a> = (&'a [&'a str], &'a str, Right, (Effect, Option<i64>));
    let cases: &[Case<'_>] = &[
        (&[], "fs:a.txt", Right::Read, (Deny, None)),
        (&["read fs:**"], "fs:a.txt", Right::Read, (Allow, Some(1))),
        (&["read fs:**"], "fs:a.txt", Right::Write, (Deny, None)),
        (&["read fs:** deny", "read fs:docs/**"], "fs:docs/x.md", Right::Read, (Allow, Some(2))),
        (&["read fs:docs/**", "read fs:docs/secret/** deny"], "fs:docs/secret/k", Right::Read, (Deny, Some(2))),
        (&["write fs:** ask", "write fs:out.txt"], "fs:out.txt", Right::Write, (Allow, Some(2))),
        (&["write fs:out.txt", "write fs:out.txt ask"], "fs:out.txt", Right::Write, (Ask, Some(2))),
        (&["write fs:out.txt deny", "write fs:out.txt ask"], "fs:out.txt", Right::Write, (Deny, Some(1))),
        (&["read fs:docs/**"], "fs:docsx/a", Right::Read, (Deny, None)),
        (&["read image:*", "read image:worker deny"], "image:worker", Right::Read, (Deny, Some(2))),
        (&["send message:*"], "message:7", Right::Send, (Allow, Some(1))),
        // MCP tools: a tool over its server's `*`, a server's `*` over every server's.
        (&["exec mcp:git/*", "exec mcp:git/git_push deny"], "mcp:git/git_push", Right::Exec, (Deny, Some(2))),
        (&["exec mcp:git/*", "exec mcp:git/git_push deny"], "mcp:git/git_status", Right::Exec, (Allow, Some(1))),
        (&["exec mcp:git/* deny", "exec mcp:git/git_log"], "mcp:git/git_log", Right::Exec, (Allow, Some(2))),
        (&["exec mcp:git/* ask", "exec mcp:*"], "mcp:git/git_diff", Right::Exec, (Ask, Some(1))),
        (&["exec mcp:*"], "mcp:time/now", Right::Exec, (Allow, Some(1))),
        (&["exec mcp:git/*"], "mcp:gitx/status", Right::Exec, (Deny, None)),
        (&["exec mcp:git/*"], "mcp:git/git_status", Right::Read, (Deny, None)),
        (&["exec mcp:git/git_push ask", "exec mcp:git/git_push"], "mcp:git/git_push", Right::Exec, (Ask, Some(1))),
        // Operator-defined tools.
        (&["exec tool:*", "exec tool:deploy ask"], "tool:deploy", Right::Exec, (Ask, Some(2))),
        (&["exec tool:*", "exec tool:deploy ask"], "tool:lint", Right::Exec, (Allow, Some(1))),
        (&["exec tool:lint"], "tool:lint2", Right::Exec, (Deny, None)),
    ];
    for (grants, resource, right, want) in cases {
        assert_eq!(check(grants, resource, *right), *want, "{grants:?} {resource} {right}");
    }
}

#[test]
fn hosts_ports_and_domains_decide_by_specificity() {
    use Effect::*;
    let net = |grants: &[&str], host: &str, port: u16| {
        let gs: Vec<Grant> = grants.iter().enumerate().map(|(i, t)| grant(i as i64 + 1, t)).collect();
        let d = decide(&gs, &Resource::net(host, port), Right::Read);
        (d.effect, d.grant.map(GrantId::get))
    };
    type Case<'a> = (&'a [&'a str], &'a str, u16, (Effect, Option<i64>));
    let cases: &[Case<'_>] = &[
        (&[], "example.com", 443, (Deny, None)),
        (&["read net:example.com"], "example.com", 443, (Allow, Some(1))),
        (&["read net:example.com"], "api.example.com", 443, (Deny, None)),
        (&["read net:example.com:443"], "example.com", 80, (Deny, None)),
        (&["read net:example.com", "read net:example.com:22 deny"], "example.com", 22, (Deny, Some(2))),
        (&["read net:example.com", "read net:example.com:22 deny"], "example.com", 443, (Allow, Some(1))),
        (&["read net:*.example.com"], "api.example.com", 443, (Allow, Some(1))),
        (&["read net:*.example.com"], "example.com", 443, (Deny, None)),
        (&["read net:*.example.com"], "badexample.com", 443, (Deny, None)),
        (&["read net:*.example.com", "read net:*.corp.example.com deny"], "a.corp.example.com", 1, (Deny, Some(2))),
        (&["read net:*.example.com deny", "read net:api.example.com"], "api.example.com", 1, (Allow, Some(2))),
        (&["read net:* ", "read net:*.internal deny"], "db.internal", 5432, (Deny, Some(2))),
        (&["read net:*"], "203.0.113.9", 80, (Allow, Some(1))),
        (&["read net:[::1]:8080"], "[::1]", 8080, (Allow, Some(1))),
    ];
    for (grants, host, port, want) in cases {
        assert_eq!(net(grants, host, *port), *want, "{grants:?} {host}:{port}");
    }
    let shown: Vec<String> = ["read net:Example.COM.", "read net:*.Example.com", "read net:[0:0::1]:80", "read net:*"]
        .iter()
        .map(|t| GrantSpec::parse(t).unwrap().resource.to_string())
        .collect();
    assert_eq!(shown, ["net:example.com", "net:*.example.com", "net:[::1]:80", "net:*"]);
    let within = |a: &str, b: &str| ResourcePattern::parse(a).unwrap().within(&ResourcePattern::parse(b).unwrap());
    assert!(within("net:a.example.com:443", "net:*.example.com"));
    assert!(within("net:example.com:443", "net:example.com"));
    assert!(!within("net:example.com", "net:example.com:443"));
    assert!(within("net:*.a.example.com", "net:*.example.com"));
    assert!(!within("net:*.example.com", "net:api.example.com"));
    assert!(!within("net:example.com", "net:*.example.com"));
    let errors: Vec<String> = [
        "net:",
        "net:*.example.com:443",
        "net:ex ample.com",
        "net:a:b",
        "net:::1",
        "net:host:0",
        "net:host:70000",
        "net:*.10.0.0.1",
        "net:a*b.com",
        "net:-a.com",
        "net:a\u{1b}[2J.com",
    ]
    .iter()
    .map(|t| ResourcePattern::parse(t).unwrap_err())
    .collect();
    insta::assert_snapshot!(errors.join("\n"));
}

#[test]
fn grant_syntax_round_trips_and_bad_grants_name_the_problem() {
    let g = GrantSpec::parse("read,write fs:./src//lib/** ask delegable uses=3 expires=10m").unwrap();
    assert_eq!(g.to_string(), "read,write fs:src/lib/** ask delegable uses=3 expires=600s");
    let errors: Vec<String> = [
        "read",
        "read fs:../x",
        "read fs:/etc/passwd",
        "fly fs:x",
        "read disk:x",
        "read fs:x maybe",
        "read fs:x uses=0",
        "read process:abc",
        "exec mcp:",
        "exec mcp:git",
        "exec mcp:a/b/c",
        "exec mcp:/x",
        "exec mcp:git/",
        "exec mcp:git/a*b",
        "exec mcp:g\u{1b}[31mit/x",
        "exec mcp:git/x\u{7}",
        "exec tool:",
        "exec tool:a.b",
        "exec tool:x\u{0}",
    ]
    .iter()
    .map(|t| GrantSpec::parse(t).unwrap_err())
    .collect();
    insta::assert_snapshot!(errors.join("\n"));
}

#[test]
fn mcp_and_tool_patterns_print_as_they_parse() {
    for text in ["mcp:git/git_push", "mcp:git/*", "mcp:*", "tool:deploy", "tool:*"] {
        assert_eq!(ResourcePattern::parse(text).unwrap().to_string(), text);
    }
    let server = ResourcePattern::parse("mcp:git/*").unwrap();
    assert!(ResourcePattern::parse("mcp:git/git_push").unwrap().within(&server));
    assert!(!ResourcePattern::parse("mcp:gitx/a").unwrap().within(&server));
    assert!(server.within(&ResourcePattern::parse("mcp:*").unwrap()));
    assert!(!server.within(&ResourcePattern::parse("mcp:git/git_push").unwrap()));
}

#[test]
fn covering_attenuates_and_never_bypasses_a_parent_deny() {
    let parent = vec![
        grant(1, "read fs:** delegable"),
        grant(2, "read fs:secret/** deny"),
        grant(3, "write fs:out/** ask delegable uses=2"),
        grant(4, "read image:worker"),
    ];
    let now = Timestamp(0);
    let ok = |t: &str| covers(&parent, &GrantSpec::parse(t).unwrap(), now).map(|(g, s)| (g.get(), s.to_string()));
    assert_eq!(ok("read fs:docs/**"), Ok((1, "read fs:docs/** allow".into())));
    assert_eq!(ok("write fs:out/a.txt ask"), Ok((3, "write fs:out/a.txt ask uses=2".into())));
    assert_eq!(ok("write fs:out/a.txt deny uses=1"), Ok((3, "write fs:out/a.txt deny uses=1".into())));
    for refused in ["read fs:**", "write fs:out/a.txt", "read image:worker", "read,write fs:docs/**"] {
        assert!(ok(refused).is_err(), "{refused} should be refused");
    }
}
