//! Opening PostgreSQL stores through the binary: unreachable, misnamed
//! and empty ones are one line and exit 4.

use libos_kernel::testing::ScratchSchema;

use crate::support::Env;

fn a_postgres_store_that_is_unreachable_misnamed_or_empty_is_one_line_and_exit_4() {
    let Some(schema) = ScratchSchema::new() else { return };
    let env = Env::new();
    let empty = schema.url();
    let cases = [
        (
            "postgres://postgres@127.0.0.1:1/test".to_string(),
            "libos: error: cannot open store postgres://postgres@127.0.0.1:1/test: error connecting to server: \
             Connection refused (os error 111)"
                .to_string(),
        ),
        (
            "postgres://postgres:secret@127.0.0.1:5432/no_such_database".to_string(),
            "libos: error: cannot open store postgres://postgres:***@127.0.0.1:5432/no_such_database: \
             database \"no_such_database\" does not exist"
                .to_string(),
        ),
        (
            format!("{empty}_missing"),
            format!(
                "libos: error: cannot open store {empty}_missing: no schema on the search_path exists (create it first)"
            ),
        ),
        (empty.clone(), format!("libos: error: no libos store at {empty} (run `libos init`, or pass --db)")),
    ];
    for (url, message) in cases {
        let (code, err) = env.fails(&["--db", &url, "ps"]);
        assert_eq!((code, err.trim_end()), (4, message.as_str()));
    }
}

libos_kernel::on_postgres!(sync: a_postgres_store_that_is_unreachable_misnamed_or_empty_is_one_line_and_exit_4);
