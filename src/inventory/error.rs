//! Inventory errors: every problem found, each with its place in the file and a fix.

use std::fmt;
use std::path::PathBuf;

use super::locate::Pos;

/// One problem with the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub pos: Option<Pos>,
    /// The field, like `hosts[1].address` (empty for the whole file).
    pub field: String,
    pub message: String,
    /// What the user can do about it.
    pub hint: Option<String>,
}

/// All problems found in one inventory file. Loading reports every problem it can find at
/// once, so a user fixes them in one pass.
#[derive(Debug)]
pub struct InventoryError {
    pub file: PathBuf,
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.diagnostics.len();
        writeln!(
            f,
            "{} has {n} problem{}:",
            self.file.display(),
            if n == 1 { "" } else { "s" }
        )?;
        for d in &self.diagnostics {
            write!(f, "  {}", self.file.display())?;
            if let Some(pos) = d.pos {
                write!(f, ":{}:{}", pos.line, pos.column)?;
            }
            if !d.field.is_empty() {
                write!(f, ": {}", d.field)?;
            }
            writeln!(f, ": {}", d.message)?;
            if let Some(hint) = &d.hint {
                writeln!(f, "    fix: {hint}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for InventoryError {}
