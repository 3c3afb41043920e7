//! The examples `--help` shows after each command's options.

/// `libos --help`.
pub const LIBOS: &str = "\
Examples:
  libos init
  libos spawn assistant --goal 'Summarise README.md into notes.md' --grant 'write fs:** ask'
  libos run                       # in another shell; Ctrl-C stops it cleanly
  libos pending && libos approve 1
  libos ps --all --tree
  libos logs 1 --follow
  libos audit verify

Exit codes: 0 success, 1 other error, 2 usage, 3 not found, 4 store unusable,
5 audit chain broken, 6 refused in the current state.";

/// `libos init --help`.
pub const INIT: &str = "\
Examples:
  libos init                                  # ./.libos/libos.db
  libos --db postgres://postgres@127.0.0.1/test init";

/// `libos spawn --help`.
pub const SPAWN: &str = "\
Examples:
  libos spawn assistant --goal 'Summarise README.md into notes.md'
  libos spawn coder --goal 'Fix the failing test' --grant 'exec shell:cargo ask' --budget quanta=50,cost_usd=0.5
  libos spawn orchestrator --goal 'Review src/' --workspace ./project --run
  pid=$(libos spawn assistant --goal 'Say hello' --json | jq .pid)";

/// `libos run --help`.
pub const RUN: &str = "\
Examples:
  libos run                                   # until Ctrl-C
  libos run --until-idle --concurrency 4
  libos run --until-idle --script play.toml   # a scripted model for every profile";

/// `libos ps --help`.
pub const PS: &str = "\
Examples:
  libos ps                                    # live processes
  libos ps --all --tree
  libos ps --state waiting,paused --image worker
  libos ps --parent 1 -q                      # the pids of process 1's children
  libos ps --all --json | jq '.[] | {pid, state}'";

/// `libos kill --help`.
pub const KILL: &str = "\
Examples:
  libos kill 4
  libos kill 1 --tree --reason 'runaway orchestrator'
  libos ps --image worker -q | xargs -n1 libos kill";

/// `libos renice --help`.
pub const RENICE: &str = "\
Examples:
  libos renice 4 10
  libos renice 4 -- -5";

/// `libos pause --help`.
pub const PAUSE: &str = "\
Examples:
  libos pause 4
  libos pause 4 --json";

/// `libos resume --help`.
pub const RESUME: &str = "\
Examples:
  libos resume 4";

/// `libos pending --help`.
pub const PENDING: &str = "\
Examples:
  libos pending
  libos pending --json | jq '.[] | {id, tool, args}'";

/// `libos approve --help`.
pub const APPROVE: &str = "\
Examples:
  libos approve 3
  libos approve 3 --always                    # and allow exactly that from now on";

/// `libos deny --help`.
pub const DENY: &str = "\
Examples:
  libos deny 3 --reason 'not that file'
  libos deny 3 --always";

/// `libos answer --help`.
pub const ANSWER: &str = "\
Examples:
  libos answer 5 'use the staging database'";

/// `libos send --help`.
pub const SEND: &str = "\
Examples:
  libos send 4 'also check the tests'
  libos send 4 'stop and report' --interrupt
  libos send 4 'done?' --channel status --json";

/// `libos inbox --help`.
pub const INBOX: &str = "\
Examples:
  libos inbox 4
  libos inbox 4 --json";

/// `libos caps --help`.
pub const CAPS: &str = "\
Examples:
  libos caps 4
  libos caps 4 --json | jq '.[] | select(.status == \"live\")'";

/// `libos grant --help`.
pub const GRANT: &str = "\
Examples:
  libos grant 4 'read fs:api/**'
  libos grant 4 'write fs:out/** ask uses=3 expires=1h'
  libos grant 4 read,write 'fs:src/**' --delegable";

/// `libos revoke --help`.
pub const REVOKE: &str = "\
Examples:
  libos revoke 12";

/// `libos memory --help`.
pub const MEMORY: &str = "\
Examples:
  libos memory 4
  libos memory show 2 --json";

/// `libos replay --help`.
pub const REPLAY: &str = "\
Examples:
  libos replay 1
  libos replay 1 --json";

/// `libos logs --help`.
pub const LOGS: &str = "\
Examples:
  libos logs 4
  libos logs 4 --follow                       # until the process ends, or Ctrl-C
  libos logs 4 --json | jq '.quanta[].tool_calls[].tool'";

/// `libos images --help`.
pub const IMAGES: &str = "\
Examples:
  libos images
  libos images show coder
  libos images --json | jq '.[].name'";

/// `libos audit --help`.
pub const AUDIT: &str = "\
Examples:
  libos audit --pid 4 --outcome denied
  libos audit --since 15m --follow
  libos audit --wide --limit 20
  libos audit head > head.txt && libos audit verify --expect-head \"$(cat head.txt)\"";

/// `libos demo --help`.
pub const DEMO: &str = "\
Examples:
  libos demo
  libos demo --dir /tmp/libos-demo
  libos demo mcp";

/// `libos serve --help`.
pub const SERVE: &str = "\
Examples:
  libos serve                                 # http://127.0.0.1:7878, a generated token
  LIBOS_TOKEN=$(openssl rand -hex 16) libos serve --run
  libos serve --addr 0.0.0.0:7878 --token-file /etc/libos/token   # put TLS in front";

/// `libos mcp --help`.
pub const MCP: &str = "\
Examples:
  libos mcp list --check
  libos mcp tools time
  libos mcp call time get_current_time '{\"timezone\": \"Europe/Paris\"}'";

/// `libos completions --help`.
pub const COMPLETIONS: &str = "\
Examples:
  libos completions bash > ~/.local/share/bash-completion/completions/libos
  libos completions zsh > \"${fpath[1]}/_libos\"
  libos completions fish > ~/.config/fish/completions/libos.fish";

/// `libos man --help`.
pub const MAN: &str = "\
Examples:
  libos man | man -l -
  libos man --dir /usr/local/share/man/man1";
