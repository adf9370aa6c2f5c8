//! `${VAR}` and `${VAR:-default}` in config values. Expansion runs over the parsed TOML's string
//! values (not the raw text), so a value can never inject TOML syntax and a secret from the
//! environment never appears in a TOML parse error. `$$` is a literal `$`.

/// Expand every `${…}` in `s` using `lookup`; the error names the variable and how to fix it.
pub fn expand(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| "unclosed \"${\": write ${NAME} or ${NAME:-default}".to_string())?;
            let inner = &body[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "\"${{{inner}}}\" is not a variable reference: names use A-Z, 0-9 and _"
                ));
            }
            match (lookup(name), default) {
                (Some(v), Some(d)) if v.is_empty() => out.push_str(d),
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(format!(
                        "environment variable {name} is not set (export it, or write ${{{name}:-default}})"
                    ))
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "KEY" => Some("abc".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_variables_defaults_and_escapes() {
        assert_eq!(expand("x${KEY}y", &env).unwrap(), "xabcy");
        assert_eq!(expand("${MISSING:-dflt}", &env).unwrap(), "dflt");
        assert_eq!(expand("${EMPTY:-dflt}", &env).unwrap(), "dflt");
        assert_eq!(expand("${EMPTY}", &env).unwrap(), "");
        assert_eq!(expand("$$5 and $x", &env).unwrap(), "$5 and $x");
        assert_eq!(expand("${KEY:-}", &env).unwrap(), "abc");
    }

    #[test]
    fn unset_variable_is_an_error_that_says_how_to_fix_it() {
        let e = expand("${MISSING}", &env).unwrap_err();
        assert!(e.contains("MISSING is not set"), "{e}");
        assert!(e.contains("${MISSING:-default}"), "{e}");
        assert!(expand("${UNCLOSED", &env).is_err());
        assert!(expand("${a b}", &env).is_err());
    }
}
