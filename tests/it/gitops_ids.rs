//! Property tests of the id validation: nothing invalid gets through, nothing valid is refused.

use appgear::core::names::{TenantId, WorkspaceId, WORKSPACE_ID_MAX};
use appgear::gitops::ids::ClusterName;
use proptest::prelude::*;

/// The definition, written independently of the implementation: a DNS-1123 label.
fn reference_dns_label(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    !chars.is_empty()
        && chars.len() <= 63
        && chars
            .iter()
            .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-'))
        && chars[0] != '-'
        && *chars.last().unwrap() != '-'
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn workspace_ids_follow_the_definition(s in "[a-z0-9-]{0,70}|[ -~]{0,20}|\\PC{0,8}") {
        let want = reference_dns_label(&s) && s.len() <= WORKSPACE_ID_MAX && s != "global";
        prop_assert_eq!(WorkspaceId::parse(&s).is_ok(), want, "{:?}", s);
        if want {
            let ns = WorkspaceId::parse(&s).unwrap().namespace();
            prop_assert!(reference_dns_label(&ns), "{}", ns);
        }
    }

    #[test]
    fn valid_workspace_ids_are_accepted(s in "[a-z0-9]([a-z0-9-]{0,50}[a-z0-9])?") {
        prop_assume!(s != "global");
        prop_assert!(WorkspaceId::parse(&s).is_ok(), "{:?}", s);
    }

    #[test]
    fn tenant_ids_follow_the_definition(s in "[a-z0-9-]{0,70}|[ -~]{0,20}|\\PC{0,8}") {
        let want = reference_dns_label(&s) && s != "global";
        prop_assert_eq!(TenantId::parse(&s).is_ok(), want, "{:?}", s);
    }

    #[test]
    fn cluster_names_follow_the_pattern(region in "[a-z0-9]{1,8}(-[a-z0-9]{1,8})?", env in "[a-z0-9]{1,8}") {
        let name = format!("ag-{region}-core-{env}");
        prop_assert!(ClusterName::parse(&name).is_ok(), "{}", name);
        let upper = format!("ag-{region}-core-{}", env.to_uppercase());
        prop_assert_eq!(ClusterName::parse(&upper).is_ok(), upper == name);
        let prefix = format!("xx-{region}-core-{env}");
        prop_assert!(ClusterName::parse(&prefix).is_err());
    }
}
