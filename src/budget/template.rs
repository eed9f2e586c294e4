//! Name and description templates with `%variable%`s (DESIGN §2).

/// The values of the template variables for one server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateVars {
    pub owner_email: String,
    pub owner_username: String,
    pub owner_firstname: String,
    pub owner_lastname: String,
    pub product_name: String,
    pub service_id: String,
    pub service_expiration: String,
    pub box_name: String,
    pub namespace: String,
    pub server_name: String,
}

impl TemplateVars {
    fn lookup(&self, variable: &str) -> Option<&str> {
        Some(match variable {
            "owner_email" => &self.owner_email,
            "owner_username" => &self.owner_username,
            "owner_firstname" => &self.owner_firstname,
            "owner_lastname" => &self.owner_lastname,
            "product_name" => &self.product_name,
            "service_id" => &self.service_id,
            "service_expiration" => &self.service_expiration,
            "box_name" => &self.box_name,
            "namespace" => &self.namespace,
            "server_name" => &self.server_name,
            _ => return None,
        })
    }
}

/// A template that cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown template variable %{variable}%")]
    UnknownVariable { variable: String },
}

fn is_variable_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Replaces every `%variable%` (letters, digits, `_`) with its value; any other `%` stays as it is.
/// Scans left to right like the schema's `findAll('%[A-Za-z0-9_]+%')`, so both agree on what is a
/// variable.
pub fn render(template: &str, vars: &TemplateVars) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('%') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let name_len = after.find(|c: char| !is_variable_char(c)).unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with('%') {
            let name = &after[..name_len];
            let value = vars.lookup(name).ok_or_else(|| TemplateError::UnknownVariable { variable: name.into() })?;
            out.push_str(value);
            rest = &after[name_len + 1..];
        } else {
            out.push('%');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> TemplateVars {
        TemplateVars {
            owner_email: "alice@example.com".into(),
            owner_username: "alice".into(),
            owner_firstname: "Alice".into(),
            owner_lastname: "Martin".into(),
            product_name: "GameBox - Basic".into(),
            service_id: "4211".into(),
            service_expiration: "2027-01-31T00:00:00Z".into(),
            box_name: "basic".into(),
            namespace: "customer-alice".into(),
            server_name: "survival".into(),
        }
    }

    #[test]
    fn renders_every_variable() {
        let t = "%owner_email% %owner_username% %owner_firstname% %owner_lastname% %product_name% %service_id% \
                 %service_expiration% %box_name% %namespace% %server_name%";
        assert_eq!(
            render(t, &vars()).unwrap(),
            "alice@example.com alice Alice Martin GameBox - Basic 4211 2027-01-31T00:00:00Z basic customer-alice survival"
        );
    }

    #[test]
    fn plain_percent_signs_stay() {
        assert_eq!(render("100% fun, 50 % off", &vars()).unwrap(), "100% fun, 50 % off");
        assert_eq!(render("%%%owner_username%%", &vars()).unwrap(), "%%alice%");
        assert_eq!(render("", &vars()).unwrap(), "");
    }

    #[test]
    fn an_unknown_variable_is_named() {
        let err = render("%owner_username%'s %game%", &vars()).unwrap_err();
        assert_eq!(err.to_string(), "unknown template variable %game%");
    }

    proptest::proptest! {
        #[test]
        fn text_without_variables_renders_to_itself(s in "[^%]{0,40}") {
            proptest::prop_assert_eq!(render(&s, &vars()).unwrap(), s);
        }

        #[test]
        fn rendering_never_panics(s in "\\PC{0,40}") {
            let _ = render(&s, &vars());
        }
    }
}
