//! regboot's marked block in `/etc/hosts`. Everything outside the markers is the user's and is
//! kept byte for byte (line endings, a missing final newline); a half-marked file is refused
//! rather than guessed at.

pub const BEGIN: &str = "# BEGIN regboot managed block";
pub const END: &str = "# END regboot managed block";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostsBlockError {
    #[error(
        "line {line}: `{BEGIN}` has no `{END}` after it; regboot will not guess where its block \
         ends: add the END line or delete the partial block by hand, then re-run"
    )]
    UnterminatedBlock { line: usize },
    #[error(
        "line {line}: `{END}` without a `{BEGIN}` before it; delete that line or add the BEGIN \
         line by hand, then re-run"
    )]
    StrayEnd { line: usize },
}

/// `existing` with regboot's block holding exactly `block_lines` (each without a line ending):
/// the first block is replaced in place, later copies of it are removed, and a file without
/// one gets it appended. New lines use the file's line ending (CRLF when its first line has one).
pub fn apply_block(existing: &str, block_lines: &[String]) -> Result<String, HostsBlockError> {
    let lines: Vec<&str> = existing.split_inclusive('\n').collect();
    let blocks = find_blocks(&lines)?;
    let eol = if lines.first().is_some_and(|l| l.ends_with("\r\n")) {
        "\r\n"
    } else {
        "\n"
    };
    let mut out = String::with_capacity(existing.len() + 64 * (block_lines.len() + 2));
    let Some(&(first_begin, first_end)) = blocks.first() else {
        out.push_str(existing);
        if !existing.is_empty() && !existing.ends_with('\n') {
            out.push_str(eol);
        }
        push_block(&mut out, block_lines, eol, eol);
        return Ok(out);
    };
    for (i, line) in lines.iter().enumerate() {
        if i == first_begin {
            // Keep the END line's own terminator: a block that ended the file without a final
            // newline still does.
            let last_eol = &lines[first_end][line_body(lines[first_end]).len()..];
            push_block(&mut out, block_lines, eol, last_eol);
        } else if !blocks.iter().any(|&(b, e)| (b..=e).contains(&i)) {
            out.push_str(line);
        }
    }
    Ok(out)
}

/// `existing` without regboot's block(s); unchanged when there is none.
pub fn remove_block(existing: &str) -> Result<String, HostsBlockError> {
    let lines: Vec<&str> = existing.split_inclusive('\n').collect();
    let blocks = find_blocks(&lines)?;
    Ok(lines
        .iter()
        .enumerate()
        .filter(|(i, _)| !blocks.iter().any(|&(b, e)| (b..=e).contains(i)))
        .map(|(_, l)| *l)
        .collect())
}

fn push_block(out: &mut String, block_lines: &[String], eol: &str, last_eol: &str) {
    out.push_str(BEGIN);
    out.push_str(eol);
    for line in block_lines {
        out.push_str(line);
        out.push_str(eol);
    }
    out.push_str(END);
    out.push_str(last_eol);
}

/// A line without its terminator (`\n` or `\r\n`).
fn line_body(line: &str) -> &str {
    line.trim_end_matches('\n').trim_end_matches('\r')
}

/// `(begin, end)` line indexes of every complete block, in order.
fn find_blocks(lines: &[&str]) -> Result<Vec<(usize, usize)>, HostsBlockError> {
    let mut blocks = Vec::new();
    let mut open: Option<usize> = None;
    for (i, line) in lines.iter().enumerate() {
        let body = line_body(line).trim_end();
        match (body, open) {
            (BEGIN, None) => open = Some(i),
            // A second BEGIN inside a block: the first one was never closed.
            (BEGIN, Some(b)) => return Err(HostsBlockError::UnterminatedBlock { line: b + 1 }),
            (END, Some(b)) => {
                blocks.push((b, i));
                open = None;
            }
            (END, None) => return Err(HostsBlockError::StrayEnd { line: i + 1 }),
            _ => {}
        }
    }
    match open {
        Some(b) => Err(HostsBlockError::UnterminatedBlock { line: b + 1 }),
        None => Ok(blocks),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|s| s.to_string()).collect()
    }

    const DEBIAN: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n";

    #[test]
    fn appends_to_a_file_without_a_block_and_is_idempotent() {
        let lines = block(&["10.0.0.50 registry01.dev.com registry.local"]);
        let once = apply_block(DEBIAN, &lines).unwrap();
        assert_eq!(
            once,
            format!("{DEBIAN}{BEGIN}\n10.0.0.50 registry01.dev.com registry.local\n{END}\n")
        );
        assert_eq!(apply_block(&once, &lines).unwrap(), once);
    }

    #[test]
    fn replaces_the_block_in_place_keeping_everything_around_it() {
        let before = format!("# top\n1.1.1.1 a\n{BEGIN}\n10.0.0.1 old\n{END}\n2.2.2.2 b\n");
        let after = apply_block(&before, &block(&["10.0.0.2 new", "10.0.0.3 new2"])).unwrap();
        assert_eq!(
            after,
            format!("# top\n1.1.1.1 a\n{BEGIN}\n10.0.0.2 new\n10.0.0.3 new2\n{END}\n2.2.2.2 b\n")
        );
    }

    #[test]
    fn missing_final_newline_is_kept_or_completed() {
        // No final newline before the block is appended: the last user line gets one, nothing else.
        let appended = apply_block("1.1.1.1 a", &block(&["x"])).unwrap();
        assert_eq!(appended, format!("1.1.1.1 a\n{BEGIN}\nx\n{END}\n"));
        // A block that ends the file without a final newline keeps that state.
        let before = format!("1.1.1.1 a\n{BEGIN}\nold\n{END}");
        assert_eq!(
            apply_block(&before, &block(&["new"])).unwrap(),
            format!("1.1.1.1 a\n{BEGIN}\nnew\n{END}")
        );
    }

    #[test]
    fn crlf_files_stay_crlf() {
        let before = format!("1.1.1.1 a\r\n{BEGIN}\r\nold\r\n{END}\r\n2.2.2.2 b");
        assert_eq!(
            apply_block(&before, &block(&["new"])).unwrap(),
            format!("1.1.1.1 a\r\n{BEGIN}\r\nnew\r\n{END}\r\n2.2.2.2 b")
        );
        assert_eq!(
            apply_block("1.1.1.1 a\r\n", &block(&["n"])).unwrap(),
            format!("1.1.1.1 a\r\n{BEGIN}\r\nn\r\n{END}\r\n")
        );
    }

    #[test]
    fn empty_file_gets_just_the_block() {
        assert_eq!(
            apply_block("", &block(&["n"])).unwrap(),
            format!("{BEGIN}\nn\n{END}\n")
        );
    }

    #[test]
    fn duplicate_blocks_collapse_into_the_first() {
        let before = format!("a\n{BEGIN}\nold1\n{END}\nb\n{BEGIN}\nold2\n{END}\nc\n");
        assert_eq!(
            apply_block(&before, &block(&["new"])).unwrap(),
            format!("a\n{BEGIN}\nnew\n{END}\nb\nc\n")
        );
    }

    #[test]
    fn half_marked_files_are_refused() {
        let unterminated = format!("a\n{BEGIN}\nx\n");
        assert_eq!(
            apply_block(&unterminated, &block(&["n"])),
            Err(HostsBlockError::UnterminatedBlock { line: 2 })
        );
        assert!(remove_block(&unterminated).is_err());
        let nested = format!("{BEGIN}\n{BEGIN}\n{END}\n");
        assert_eq!(
            apply_block(&nested, &[]),
            Err(HostsBlockError::UnterminatedBlock { line: 1 })
        );
        let stray = format!("a\nb\n{END}\n");
        assert_eq!(
            apply_block(&stray, &[]),
            Err(HostsBlockError::StrayEnd { line: 3 })
        );
    }

    #[test]
    fn markers_with_trailing_spaces_are_recognised() {
        let before = format!("{BEGIN}  \nold\n{END}\t\n");
        assert_eq!(
            apply_block(&before, &block(&["new"])).unwrap(),
            format!("{BEGIN}\nnew\n{END}\n")
        );
    }

    #[test]
    fn remove_restores_the_original_file() {
        for original in [DEBIAN, "x\r\ny\r\n", "", "no newline\n"] {
            let with = apply_block(original, &block(&["10.0.0.1 r"])).unwrap();
            assert_eq!(remove_block(&with).unwrap(), original);
        }
        assert_eq!(remove_block(DEBIAN).unwrap(), DEBIAN);
    }
}
