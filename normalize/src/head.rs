//! The columns every OCSF event of every source carries (classification, time, severity,
//! metadata, cloud, observables, unmapped), and the helpers that fill them the same way for
//! every source.

use ocelot_schemas::{BatchWriter, ClassDef};

use super::columns::columns;

columns! {
    pub struct Head {
        activity_id: i32 = "activity_id",
        activity_name: str = "activity_name",
        category_uid: i32 = "category_uid",
        category_name: str = "category_name",
        class_uid: i32 = "class_uid",
        class_name: str = "class_name",
        type_uid: i64 = "type_uid",
        type_name: str = "type_name",
        severity_id: i32 = "severity_id",
        severity: str = "severity",
        time: i64 = "time",
        time_dt: ts = "time_dt",
        md_uid: str = "metadata.uid",
        md_version: str = "metadata.version",
        md_product: str = "metadata.product.name",
        md_vendor: str = "metadata.product.vendor_name",
        md_feature: str = "metadata.product.feature.name",
        md_product_version: str = "metadata.product.version",
        md_log_version: str = "metadata.log_version",
        md_log_name: str = "metadata.log_name",
        md_log_provider: str = "metadata.log_provider",
        md_event_code: str = "metadata.event_code",
        md_original_time: str = "metadata.original_time",
        md_profiles: list = "metadata.profiles",
        md_labels: list = "metadata.labels",
        cloud_provider: str = "cloud.provider",
        cloud_region: str = "cloud.region",
        cloud_account: str = "cloud.account.uid",
        observables: list = "observables",
        obs_name: str = "observables.name",
        obs_type: str = "observables.type",
        obs_type_id: i32 = "observables.type_id",
        obs_value: str = "observables.value",
        unmapped: str = "unmapped",
    }
}

/// Observable type ids (OCSF `observable.type_id`, from the dictionary's types).
pub mod obs {
    pub const HOSTNAME: (&str, i32) = ("Hostname", 1);
    pub const IP: (&str, i32) = ("IP Address", 2);
    pub const USER_NAME: (&str, i32) = ("User Name", 4);
    pub const URL: (&str, i32) = ("URL String", 6);
    pub const RESOURCE_UID: (&str, i32) = ("Resource UID", 10);
}

impl Head {
    /// activity, category, class and type; `activity_name` overrides the class's caption
    /// (OCSF wants the source's own word for Other).
    pub fn classify(&self, w: &mut BatchWriter, class: &ClassDef, activity: i32, activity_name: Option<&str>) {
        let caption = class.activity_name(activity).unwrap_or("Other");
        w.i32(self.activity_id, activity);
        w.str(self.activity_name, activity_name.unwrap_or(caption));
        w.i32(self.category_uid, class.category_uid);
        w.str(self.category_name, &class.category_name);
        w.i32(self.class_uid, class.uid);
        w.str(self.class_name, &class.caption);
        w.i64(self.type_uid, class.type_uid(activity));
        // "<Class>: <Activity>", built in a reused buffer: this runs once per event.
        thread_local!(static TYPE_NAME: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) });
        TYPE_NAME.with_borrow_mut(|t| {
            t.clear();
            t.push_str(&class.caption);
            t.push_str(": ");
            t.push_str(caption);
            w.str(self.type_name, t);
        });
    }

    pub fn severity(&self, w: &mut BatchWriter, id: i32) {
        w.i32(self.severity_id, id);
        w.str(self.severity, severity_name(id));
    }

    pub fn time(&self, w: &mut BatchWriter, epoch_ms: i64) {
        w.i64(self.time, epoch_ms);
        w.ts(self.time_dt, epoch_ms);
    }

    /// OCSF version, product and vendor, and the profiles the event uses. `datetime` is always
    /// listed: [`Head::time`] writes `time_dt` beside `time`, and a `*_dt` attribute is valid
    /// only where the profile is listed.
    pub fn product(&self, w: &mut BatchWriter, product: &str, vendor: &str, profiles: &[&str]) {
        w.str(self.md_version, ocelot_schemas::OCSF_VERSION);
        w.str(self.md_product, product);
        w.str(self.md_vendor, vendor);
        for p in profiles.iter().filter(|p| **p != "datetime") {
            w.push_str(self.md_profiles, p);
        }
        w.push_str(self.md_profiles, "datetime");
    }

    /// `cloud.provider` AWS, with the region and account when known.
    pub fn aws(&self, w: &mut BatchWriter, region: Option<&str>, account: Option<&str>) {
        w.str(self.cloud_provider, "AWS");
        if let Some(r) = region.filter(|r| !r.is_empty()) {
            w.str(self.cloud_region, r);
        }
        if let Some(a) = account.filter(|a| !a.is_empty()) {
            w.str(self.cloud_account, a);
        }
    }

    /// Writes what `mapped` does not consume of the record to `unmapped` (JSON text), and
    /// ends the row.
    pub fn finish_row(&self, w: &mut BatchWriter, record: &simd_json::BorrowedValue<'_>, mapped: &crate::json::Mapped, buf: &mut Vec<u8>) {
        buf.clear();
        if crate::json::write_unmapped(record, mapped, &[], buf) {
            w.str(self.unmapped, std::str::from_utf8(buf).unwrap_or_default());
        }
        w.end_row();
    }

    pub fn observable(&self, w: &mut BatchWriter, name: &str, (kind, type_id): (&str, i32), value: &str) {
        w.begin_item(self.observables);
        w.str(self.obs_name, name);
        w.str(self.obs_type, kind);
        w.i32(self.obs_type_id, type_id);
        w.str(self.obs_value, value);
        w.end_item(self.observables);
    }
}

pub fn severity_name(id: i32) -> &'static str {
    match id {
        1 => "Informational",
        2 => "Low",
        3 => "Medium",
        4 => "High",
        5 => "Critical",
        6 => "Fatal",
        99 => "Other",
        _ => "Unknown",
    }
}

/// The parts of an AWS ARN: `arn:partition:service:region:account:resource`.
pub struct Arn<'a> {
    pub service: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

pub fn parse_arn(s: &str) -> Option<Arn<'_>> {
    let mut parts = s.splitn(6, ':');
    if parts.next()? != "arn" {
        return None;
    }
    let _partition = parts.next()?;
    Some(Arn { service: parts.next()?, region: parts.next()?, account: parts.next()?, resource: parts.next()? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_split() {
        let a = parse_arn("arn:aws:wafv2:us-east-1:123456789012:regional/webacl/test/a1b2").unwrap();
        assert_eq!((a.service, a.region, a.account, a.resource), ("wafv2", "us-east-1", "123456789012", "regional/webacl/test/a1b2"));
        assert!(parse_arn("385cb038-3a6f-4f2f-ac64-09ab912af590").is_none());
        assert_eq!(parse_arn("arn:aws:iam::123456789012:role/x").unwrap().region, "");
    }
}
