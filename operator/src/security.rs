//! The `restricted` Pod Security profile, as every pod the operator creates wears it.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{Capabilities, PodSecurityContext, ResourceRequirements, SeccompProfile, SecurityContext},
    apimachinery::pkg::api::resource::Quantity,
};

/// Non-root uid/gid of our images (the distroless `nonroot` user).
pub const RUN_AS_USER: i64 = 65532;

pub fn pod_security() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS_USER),
        run_as_group: Some(RUN_AS_USER),
        fs_group: Some(RUN_AS_USER),
        seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), localhost_profile: None }),
        ..Default::default()
    }
}

pub fn container_security() -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), add: None }),
        seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), localhost_profile: None }),
        ..Default::default()
    }
}

pub fn resources(cpu_request: &str, memory_request: &str, cpu_limit: &str, memory_limit: &str) -> ResourceRequirements {
    let q = |cpu: &str, mem: &str| {
        BTreeMap::from([("cpu".to_string(), Quantity(cpu.into())), ("memory".to_string(), Quantity(mem.into()))])
    };
    ResourceRequirements {
        requests: Some(q(cpu_request, memory_request)),
        limits: Some(q(cpu_limit, memory_limit)),
        ..Default::default()
    }
}
