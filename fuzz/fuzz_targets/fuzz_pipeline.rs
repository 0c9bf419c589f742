//! The pipeline loader (YAML → schema → typed → cross-field rules) on arbitrary bytes: it
//! must return a pipeline or problems, never panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = synthcohort::pipeline::parse(data, "fuzz.yaml", std::path::Path::new(".")) {
        // Rendering the report walks every problem and position.
        let _ = e.to_string();
    }
});
