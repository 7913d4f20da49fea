//! AWS partitions: the DNS suffix of a region's service endpoints. The `@connections` endpoint of a
//! custom-domain API must be built on the execute-api host, and `.amazonaws.com` is wrong outside
//! the `aws` and `aws-us-gov` partitions (China is `.amazonaws.com.cn`).

/// The DNS suffix of `region`'s partition (the `dnsSuffix` of the SDK's partitions table).
pub fn dns_suffix(region: &str) -> &'static str {
    // Longest prefixes first: `us-isob-` before `us-iso-`.
    const TABLE: &[(&str, &str)] = &[
        ("cn-", "amazonaws.com.cn"),
        ("us-isob-", "sc2s.sgov.gov"),
        ("us-isof-", "csp.hci.ic.gov"),
        ("us-iso-", "c2s.ic.gov"),
        ("eu-isoe-", "cloud.adc-e.uk"),
        ("eusc-", "amazonaws.eu"),
    ];
    TABLE
        .iter()
        .find(|(prefix, _)| region.starts_with(prefix))
        .map_or("amazonaws.com", |(_, suffix)| suffix)
}

/// Whether `host` is an execute-api endpoint host (`{api}.execute-api.{region}.{suffix}`), where
/// `@connections` is served, as opposed to a custom domain, where it is not.
pub fn is_execute_api_host(host: &str) -> bool {
    let mut labels = host.split('.');
    matches!((labels.next(), labels.next()), (Some(api), Some("execute-api")) if !api.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_per_partition() {
        assert_eq!(dns_suffix("us-east-1"), "amazonaws.com");
        assert_eq!(dns_suffix("eu-west-2"), "amazonaws.com");
        assert_eq!(dns_suffix("us-gov-west-1"), "amazonaws.com");
        assert_eq!(dns_suffix("cn-north-1"), "amazonaws.com.cn");
        assert_eq!(dns_suffix("cn-northwest-1"), "amazonaws.com.cn");
        assert_eq!(dns_suffix("us-iso-east-1"), "c2s.ic.gov");
        assert_eq!(dns_suffix("us-isob-east-1"), "sc2s.sgov.gov");
        assert_eq!(dns_suffix("us-isof-south-1"), "csp.hci.ic.gov");
        assert_eq!(dns_suffix("eu-isoe-west-1"), "cloud.adc-e.uk");
        assert_eq!(dns_suffix("eusc-de-east-1"), "amazonaws.eu");
    }

    #[test]
    fn execute_api_hosts() {
        assert!(is_execute_api_host(
            "abc123.execute-api.us-east-1.amazonaws.com"
        ));
        assert!(is_execute_api_host(
            "abc123.execute-api.cn-north-1.amazonaws.com.cn"
        ));
        assert!(!is_execute_api_host("gate.example.com"));
        assert!(!is_execute_api_host("execute-api.example.com"));
        assert!(!is_execute_api_host(".execute-api.x"));
    }
}
