//! The Laravel validation rules that eggs use for their variables (`required|string|max:20`), as the
//! panels apply them to `environment` on create and startup updates.

/// Checks `value` (None = absent, or empty after the panels' `""` → null normalisation) against a
/// rule string; returns the panel's message for the first failing rule.
pub fn check(label: &str, value: Option<&str>, rules: &str) -> Result<(), (String, String)> {
    let rules: Vec<&str> = rules.split('|').map(str::trim).filter(|r| !r.is_empty()).collect();
    let value = value.map(str::trim).filter(|v| !v.is_empty());
    let Some(value) = value else {
        return if rules.contains(&"required") {
            Err(("required".into(), format!("The {label} variable field is required.")))
        } else {
            Ok(())
        };
    };
    let numeric = rules.iter().any(|r| *r == "integer" || *r == "numeric");
    for rule in &rules {
        let (name, arg) = rule.split_once(':').unwrap_or((rule, ""));
        let fail = |message: String| Err((name.to_string(), message));
        let size = || -> f64 { if numeric { value.parse().unwrap_or(f64::NAN) } else { value.chars().count() as f64 } };
        let unit = if numeric { "" } else { " characters" };
        match name {
            "integer" if value.parse::<i64>().is_err() => {
                return fail(format!("The {label} variable field must be an integer."));
            }
            "numeric" if value.parse::<f64>().is_err() => {
                return fail(format!("The {label} variable field must be a number."));
            }
            "boolean" if !matches!(value, "0" | "1" | "true" | "false") => {
                return fail(format!("The {label} variable field must be true or false."));
            }
            "alpha_num" if !value.chars().all(char::is_alphanumeric) => {
                return fail(format!("The {label} variable field must only contain letters and numbers."));
            }
            "min" if size() < arg.parse().unwrap_or(f64::MIN) => {
                return fail(format!("The {label} variable field must be at least {arg}{unit}."));
            }
            "max" if size() > arg.parse().unwrap_or(f64::MAX) => {
                return fail(format!("The {label} variable field must not be greater than {arg}{unit}."));
            }
            "between" => {
                let (lo, hi) = arg.split_once(',').unwrap_or(("", ""));
                let (lo, hi) = (lo.parse().unwrap_or(f64::MIN), hi.parse().unwrap_or(f64::MAX));
                if !(size() >= lo && size() <= hi) {
                    return fail(format!("The {label} variable field must be between {lo} and {hi}{unit}."));
                }
            }
            "in" if !arg.split(',').any(|a| a == value) => {
                return fail(format!("The selected {label} variable is invalid."));
            }
            "regex" => {
                let pattern = arg.strip_prefix('/').and_then(|p| p.rsplit_once('/')).map(|(p, _)| p).unwrap_or(arg);
                if !regex::Regex::new(pattern).is_ok_and(|re| re.is_match(value)) {
                    return fail(format!("The {label} variable field format is invalid."));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn the_common_egg_rules() {
        assert!(check("Jar", Some("server.jar"), "required|regex:/^([\\w\\d._-]+)(\\.jar)$/").is_ok());
        assert_eq!(
            check("Jar", Some("server.zip"), "required|regex:/^([\\w\\d._-]+)(\\.jar)$/").unwrap_err().0,
            "regex"
        );
        assert_eq!(check("Jar", None, "required|string").unwrap_err().1, "The Jar variable field is required.");
        assert_eq!(check("Jar", Some("  "), "required|string").unwrap_err().0, "required");
        assert!(check("Path", None, "nullable|string").is_ok());
        assert_eq!(check("Players", Some("900"), "required|integer|between:1,500").unwrap_err().0, "between");
        assert_eq!(check("Size", Some("big"), "required|integer").unwrap_err().0, "integer");
        assert_eq!(check("Version", Some("123456789012345678901"), "nullable|string|max:20").unwrap_err().0, "max");
        assert!(check("Flag", Some("true"), "in:true,false").is_ok());
        assert_eq!(check("Flag", Some("yes"), "in:true,false").unwrap_err().0, "in");
    }
}
