//! The words a subject's prompt is made of: what the cohort fills the template with, and what
//! validation checks against a diffusion model's vocabulary — one definition for both.

use crate::anatomy::Template;

/// What `{conditions}` says for a subject without conditions.
pub const NO_FINDINGS: &str = "no findings";

/// The body region `{template}` names in a prompt.
pub fn template_word(t: Template) -> &'static str {
    match t {
        Template::ThoraxPhantom | Template::Chest => "chest",
        Template::AbdomenPhantom | Template::Abdomen => "abdomen",
        Template::Head | Template::HeadPhantom => "head",
        Template::WaterCylinder => "water phantom",
        Template::CtQa => "CT QA phantom",
    }
}

/// The text a condition adds to `{conditions}`: its prompt, else its name in words.
pub fn condition_text(c: &super::spec::ConditionSpec) -> String {
    c.prompt.clone().unwrap_or_else(|| c.name.replace('_', " "))
}
