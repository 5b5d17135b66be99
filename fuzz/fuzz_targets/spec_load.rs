//! ScaledObject YAML as `ebb run` loads it: split into documents, parse, validate, and build
//! the engine's spec. Checks: nothing panics on any text.
#![no_main]

use std::path::Path;

use ebb::scaling::EngineSpec;
use ebb::spec::load::parse_documents;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(documents) = parse_documents(Path::new("fuzz.yaml"), text) else {
        return;
    };
    for document in documents {
        if let Ok(object) = document.scaled_object()
            && let Ok(pause) = object.pause_state()
        {
            let _ = EngineSpec::from_spec(&object.spec, pause);
        }
    }
});
