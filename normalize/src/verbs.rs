//! What an API operation does, from its leading verb: the CloudTrail normalizer's activity
//! (Create/Read/Update/Delete) and the SQL functions rules use (`is_mutation`,
//! `mutation_kind`, `is_destructive`) read the same table.

/// The leading verb of an operation name: the first capitalised word, two for `Batch...`, so
/// `BatchGetItem` reads `BatchGet` and `Getaway` is not a `Get`.
fn verb(name: &str) -> &str {
    let word_end = |from: usize| name[from..].char_indices().skip(1).find(|(_, c)| c.is_ascii_uppercase() || c.is_ascii_digit()).map_or(name.len(), |(i, _)| from + i);
    let first = word_end(0);
    if &name[..first] == "Batch" {
        &name[..word_end(first)]
    } else {
        &name[..first]
    }
}

/// OCSF API Activity id: 1 Create, 2 Read, 3 Update, 4 Delete; `read_only` decides for verbs
/// the table does not know (2), else 99 Other.
pub fn activity_id(name: &str, read_only: Option<bool>) -> i32 {
    let id = match verb(name) {
        "Create" | "Run" | "Allocate" | "Import" | "Register" | "Add" | "Copy" | "Issue" | "Request" | "BatchCreate" | "BatchPut" => 1,
        "Get" | "Describe" | "List" | "Head" | "Lookup" | "Search" | "Scan" | "Query" | "Select" | "BatchGet" | "Download" | "Decrypt" | "Retrieve" | "Check" | "Verify" | "Preview" | "Test"
        | "BatchDescribe" => 2,
        "Update" | "Modify" | "Put" | "Set" | "Change" | "Attach" | "Associate" | "Enable" | "Disable" | "Tag" | "Untag" | "Start" | "Stop" | "Reboot" | "Replace" | "Reset" | "Authorize"
        | "Revoke" | "Upload" | "Restore" | "Send" | "Invoke" | "Assume" | "Apply" | "Accept" | "Reject" | "Encrypt" | "BatchUpdate" => 3,
        "Delete" | "Remove" | "Terminate" | "Deregister" | "Detach" | "Disassociate" | "Release" | "Purge" | "Cancel" | "Deactivate" | "Destroy" | "BatchDelete" => 4,
        _ => 0,
    };
    match (id, read_only) {
        (0, Some(true)) => 2,
        (0, _) => 99,
        (id, _) => id,
    }
}

/// `create`, `read`, `update`, `delete` or `other`.
pub fn mutation_kind(name: &str) -> &'static str {
    match activity_id(name, None) {
        1 => "create",
        2 => "read",
        3 => "update",
        4 => "delete",
        _ => "other",
    }
}

/// Changes something: create, update or delete (reads and unknown verbs do not).
pub fn is_mutation(name: &str) -> bool {
    matches!(activity_id(name, None), 1 | 3 | 4)
}

/// Takes something away: the delete verbs, and stopping or disabling (`StopLogging`,
/// `DisableKey`, `StopInstances`), which remove a function without deleting it.
pub fn is_destructive(name: &str) -> bool {
    activity_id(name, None) == 4 || matches!(verb(name), "Stop" | "Disable")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs() {
        assert_eq!(activity_id("CreateBucket", None), 1);
        assert_eq!(activity_id("RunInstances", None), 1);
        assert_eq!(activity_id("DescribeDirectConnectGateways", None), 2);
        assert_eq!(activity_id("BatchGetSecretValue", None), 2);
        assert_eq!(activity_id("PutBucketPolicy", None), 3);
        assert_eq!(activity_id("TerminateInstances", None), 4);
        assert_eq!(activity_id("Getaway", None), 99);
        assert_eq!(activity_id("Frobnicate", Some(true)), 2);
        assert!(is_destructive("StopLogging") && is_destructive("DeleteBucket") && !is_destructive("PutBucketPolicy"));
        assert!(is_mutation("AttachRolePolicy") && !is_mutation("ListBuckets") && !is_mutation("Frobnicate"));
        assert_eq!(mutation_kind("TerminateInstances"), "delete");
    }
}
