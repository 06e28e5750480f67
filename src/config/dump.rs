//! `lvsd dump --json`: the model with every default applied, plus the
//! values derived per real (effective check port, request, receive), so
//! an operator sees exactly what each real is checked with.

use serde_json::{Value, json};

use super::model::{CheckType, Config};

/// The JSON document `lvsd dump --json` prints.
pub fn json(cfg: &Config) -> Value {
    let mut v = serde_json::to_value(cfg).unwrap_or(Value::Null);
    if let Some(vs) = v.get_mut("virtuals").and_then(Value::as_array_mut) {
        for (vj, vm) in vs.iter_mut().zip(&cfg.virtuals) {
            // checkcommand means something only to external checks (the
            // model's /bin/true is ldirectord's unused default).
            let external = matches!(
                vm.check.checktype,
                CheckType::External | CheckType::ExternalPerl
            );
            if !external && let Some(c) = vj.get_mut("check").and_then(Value::as_object_mut) {
                c.insert("checkcommand".into(), Value::Null);
            }
            if let Some(rs) = vj.get_mut("reals").and_then(Value::as_array_mut) {
                for (rj, rm) in rs.iter_mut().zip(&vm.reals) {
                    if let Some(o) = rj.as_object_mut() {
                        o.insert("check_port".into(), json!(rm.check_port(vm)));
                        o.insert("request".into(), json!(rm.request(vm)));
                        o.insert("receive".into(), json!(rm.receive(vm)));
                    }
                }
            }
        }
    }
    v
}
