//! CEL rules (`x-kubernetes-validations`) shared by the three kinds.
//!
//! Every rule carries a message that says what is expected and shows the value that was given; the
//! apiserver prefixes it with the field path, so a rejection always names the field and the value.
//! Integers use OpenAPI `minimum`/`maximum` instead: the apiserver's own message shows their value,
//! while `string(int)` in a message expression is too costly for its CEL cost estimator.

use kube::core::{Message, Rule};

/// The variables a name or description template may use (DESIGN §2).
pub const TEMPLATE_VARIABLES: [&str; 10] = [
    "%owner_email%",
    "%owner_username%",
    "%owner_firstname%",
    "%owner_lastname%",
    "%product_name%",
    "%service_id%",
    "%service_expiration%",
    "%box_name%",
    "%namespace%",
    "%server_name%",
];

/// The pattern of a `%variable%` in a template.
pub const TEMPLATE_VARIABLE_PATTERN: &str = "%[A-Za-z0-9_]+%";

fn rule(expr: impl Into<String>, message: impl Into<String>) -> Rule {
    Rule::new(expr).message(Message::Expression(message.into()))
}

/// The pattern of a panel id (`PanelId`): a positive integer, or Wisp v2's type prefix and ULID.
pub const PANEL_ID_PATTERN: &str = "^([1-9][0-9]*|[a-z]+_[0-9a-z]{26})$";

/// A panel id: a positive integer, or (Wisp v2) a prefixed ULID such as `egg_01kt…`.
pub fn panel_id() -> Rule {
    rule(
        format!("string(self).matches('{PANEL_ID_PATTERN}')"),
        "'must be a panel id: a positive integer, or a Wisp v2 id (a prefix and a ULID, such as egg_01kt…), got ' + string(self)",
    )
}

/// An int-or-string quantity that parses and is greater than zero.
pub fn positive_quantity() -> Rule {
    rule(
        "isQuantity(string(self)) && quantity(string(self)).isGreaterThan(quantity('0'))",
        "'must be a positive quantity such as 4Gi, 1500m or 2, got ' + string(self)",
    )
}

/// `perServer.min.<resource>` is not above `perServer.max.<resource>` (each checked on its own by
/// its field's rule; this one holds only when both parse).
pub fn min_not_above_max(resource: &str) -> Rule {
    let (min, max) = (format!("self.min.{resource}"), format!("self.max.{resource}"));
    rule(
        format!(
            "!has(self.min) || !has(self.max) || !has({min}) || !has({max}) \
             || !isQuantity(string({min})) || !isQuantity(string({max})) \
             || !quantity(string({min})).isGreaterThan(quantity(string({max})))"
        ),
        format!("'min.{resource} ' + string({min}) + ' is above max.{resource} ' + string({max})"),
    )
}

/// An int-or-string quantity that parses and is zero or more.
pub fn non_negative_quantity() -> Rule {
    rule(
        "isQuantity(string(self)) && !quantity(string(self)).isLessThan(quantity('0'))",
        "'must be a quantity of zero or more such as 512Mi or 0, got ' + string(self)",
    )
}

/// A field that cannot change once set.
pub fn immutable(field: &str) -> Rule {
    rule("self == oldSelf", format!("'{field} is immutable (was ' + oldSelf + ', got ' + self + ')'"))
}

/// A field that cannot change once set, with what to do instead.
pub fn immutable_because(field: &str, instead: &str) -> Rule {
    rule("self == oldSelf", format!("'{field} is immutable (was ' + oldSelf + ', got ' + self + '): {instead}'"))
}

/// A template whose `%variables%` are all known.
pub fn known_template_variables() -> Rule {
    let known = TEMPLATE_VARIABLES.iter().map(|v| format!("'{v}'")).collect::<Vec<_>>().join(", ");
    rule(
        format!("self.findAll('{TEMPLATE_VARIABLE_PATTERN}').all(v, v in [{known}])"),
        format!("'has an unknown template variable: ' + self + ' (known: {})'", TEMPLATE_VARIABLES.join(" ")),
    )
}

/// `A-B` with `1024 <= A <= B <= 65535`.
pub fn port_range() -> Rule {
    rule(
        "self.matches('^[0-9]{1,5}-[0-9]{1,5}$') && int(self.split('-')[0]) >= 1024 \
         && int(self.split('-')[0]) <= int(self.split('-')[1]) && int(self.split('-')[1]) <= 65535",
        "'must be a range A-B with 1024 <= A <= B <= 65535, got ' + self",
    )
}

/// A port range the panels accept in one piece: at most 1000 ports.
pub fn port_range_span() -> Rule {
    rule(
        "!self.matches('^[0-9]{1,5}-[0-9]{1,5}$') || int(self.split('-')[1]) - int(self.split('-')[0]) < 1000",
        "'may span at most 1000 ports (the panels refuse larger ranges), got ' + self",
    )
}

/// A value of `GameServer.spec.ports`: `+N` (1 to 5 digits) or `any`.
pub fn port_want() -> Rule {
    rule(
        "self == 'any' || self.matches('^[+][1-9][0-9]{0,4}$')",
        "'must be +N (the primary port plus N, such as +1) or any (a free port of the box portRange), got ' + self",
    )
}

/// `GameServer.spec`: `resources.allocations` counts the primary port and each of `ports`.
pub fn ports_counted() -> Rule {
    rule(
        "!has(self.ports) || self.resources.allocations >= 1 + size(self.ports)",
        "'resources.allocations must be at least 1 + the number of ports (the primary port and each of spec.ports)'",
    )
}

/// `GameServer.spec`: a variable of `ports` is the operator's to set, not `environment`'s.
pub fn ports_not_in_environment() -> Rule {
    rule(
        "!has(self.ports) || !has(self.environment) || self.ports.all(k, !(k in self.environment))",
        "'a variable of spec.ports is set by the operator to its port: remove it from spec.environment'",
    )
}

/// `GameBox.spec.budget`: `allocations` given and at least 1 (every server needs its primary port;
/// left out, it would default to 0 and the box would admit no server). Checked on the budget, so
/// that a manifest without it is refused offline as by the apiserver (which defaults it first).
pub fn allocations_given() -> Rule {
    rule(
        "has(self.allocations) && self.allocations >= 1",
        "'allocations must be at least 1: every server needs one for its primary port (budget.servers is a good start)'",
    )
}

/// An absolute http(s) URL.
pub fn http_url() -> Rule {
    rule(
        "isURL(self) && (self.startsWith('https://') || self.startsWith('http://'))",
        "'must be an absolute http:// or https:// URL, got ' + self",
    )
}

/// A Go duration of at least ten seconds (`30s`, `5m`, `1h`).
pub fn resync_duration() -> Rule {
    rule(
        "self.matches('^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+$') && duration(self) >= duration('10s')",
        "'must be a duration of at least 10s such as 30s, 5m or 1h, got ' + self",
    )
}

/// A plausible e-mail address (the panel validates it fully).
pub fn email() -> Rule {
    rule("self.matches('^[^@\\\\s]+@[^@\\\\s]+\\\\.[^@\\\\s]+$')", "'must be an e-mail address, got ' + self")
}

/// A string that is not empty (its maximum length is the schema's `maxLength`).
pub fn non_empty() -> Rule {
    Rule::new("size(self) >= 1").message(Message::Message("must not be empty".into()))
}

/// A string the panel keeps: not empty and not only whitespace (the panel trims every string it
/// receives, and a required one left empty is refused).
pub fn non_blank() -> Rule {
    Rule::new("self.trim().size() >= 1")
        .message(Message::Message("must not be empty or only whitespace (the panel trims it to nothing)".into()))
}

/// A DNS-label-like name: lower-case letters, digits and `-`, at most 63 characters.
pub fn dns_label() -> Rule {
    rule(
        "size(self) <= 63 && self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
        "'must be a lower-case name of letters, digits and -, at most 63 characters, got ' + self",
    )
}
