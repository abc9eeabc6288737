//! Serialised symbols: written before signatures existed, and with them.

use expect_test::expect;

use crate::index::{FileSymbols, Language, ParamKind, Symbol, parse_symbols};

/// A symbol saved before `params`, `decorators`, `is_async`, `is_static` and
/// `bases` existed still loads, with them empty.
#[test]
fn symbol_without_signature_fields_loads() {
    let saved = r#"{"kind":"function","name":"f","qualified_name":"f",
        "start_line":1,"end_line":2,"parent":null,"calls":["g"]}"#;
    let symbol: Symbol = serde_json::from_str(saved).expect("an old symbol loads");
    assert_eq!(symbol.calls, ["g"]);
    assert!(symbol.params.is_empty());
    assert!(symbol.decorators.is_empty());
    assert!(!symbol.is_async);
    assert!(!symbol.is_static);
    assert!(symbol.bases.is_empty());
}

/// Parameter kinds serialise in snake_case and a parsed file round-trips.
#[test]
fn signatures_round_trip_through_json() {
    let file = parse_symbols(
        Language::Python,
        b"@cache\nasync def f(a, /, *args, b=1, **kw):\n    pass\n",
    );
    let json = serde_json::to_string(&file).expect("serialising");
    let loaded: FileSymbols = serde_json::from_str(&json).expect("deserialising");
    assert_eq!(loaded, file);
    let kinds = serde_json::to_string(&[
        ParamKind::PositionalOnly,
        ParamKind::VarPositional,
        ParamKind::KeywordOnly,
        ParamKind::VarKeyword,
    ])
    .expect("serialising kinds");
    expect![[r#"["positional_only","var_positional","keyword_only","var_keyword"]"#]]
        .assert_eq(&kinds);
}
