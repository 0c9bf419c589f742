//! MRI acquisition simulator (in progress).
