//! The NIfTI readers (label maps for anatomy import, images for preview) on arbitrary bytes,
//! plain and gzip-named: clear errors, never a panic or an unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir();
    let pid = std::process::id();
    for name in [format!("synthcohort-fuzz-{pid}.nii"), format!("synthcohort-fuzz-{pid}.nii.gz")] {
        let path = dir.join(name);
        if let Ok(mut f) = std::fs::File::create(&path) {
            if f.write_all(data).is_ok() {
                let _ = synthcohort::io::read_labels(&path);
                let _ = synthcohort::io::read_image(&path);
            }
        }
    }
});
