//! Fuzz target: dependency expressions must parse or fail without panicking, and print back to text that parses to the same tree.
#![no_main]

use keepmon::config::depend::Expr;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(parsed) = Expr::parse(&text) else {
        return;
    };
    let printed = parsed.expr.to_string();
    let reparsed = match Expr::parse(&printed) {
        Ok(reparsed) => reparsed,
        Err(e) => panic!("{text:?} printed as {printed:?}, which does not parse: {e}"),
    };
    assert_eq!(
        reparsed.expr, parsed.expr,
        "{text:?} printed as {printed:?}, which parses to a different tree"
    );
    // The canonical form always writes its operators.
    assert!(
        !reparsed.legacy_space_separated,
        "{printed:?} has juxtaposed operands"
    );
    // Evaluation terminates and never panics, whatever the answers.
    let mut flip = false;
    let _ = parsed.expr.eval(&mut |_| {
        flip = !flip;
        flip
    });
});
