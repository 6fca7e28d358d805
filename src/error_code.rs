//! Every error code fedgate answers with, said once. Pages, the admin API, OAuth 2.0 answers, login
//! traces and metrics all carry an [`ErrorCode`]; its text form is stable (snake_case) and each
//! one is documented in docs/error-codes.md (a test reads that file). Domain errors return a
//! code; each surface maps it to its own shape (HTML page, admin JSON, RFC 6749 JSON).
use std::fmt;

macro_rules! error_codes {
    ($($variant:ident = $text:literal,)*) => {
        /// A stable error code (see docs/error-codes.md).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ErrorCode {
            $($variant,)*
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as it appears on the wire, in pages and in docs/error-codes.md.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $text,)*
                }
            }

            /// The code whose text is `s`, if there is one.
            pub fn parse(s: &str) -> Option<ErrorCode> {
                match s {
                    $($text => Some(ErrorCode::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

error_codes! {
    AccessDenied = "access_denied",
    AdminKeyOutOfScope = "admin_key_out_of_scope",
    AdminKeyReadOnly = "admin_key_read_only",
    AlgNotAllowed = "alg_not_allowed",
    ConnectionMisconfigured = "connection_misconfigured",
    ConnectionNotAllowed = "connection_not_allowed",
    ConnectionNotFound = "connection_not_found",
    ConsoleNotSetUp = "console_not_set_up",
    ConsumerDomain = "consumer_domain",
    CsrfTokenInvalid = "csrf_token_invalid",
    DatabaseUnavailable = "database_unavailable",
    DevModeDisabled = "dev_mode_disabled",
    DomainTaken = "domain_taken",
    EmailDomainNotAllowed = "email_domain_not_allowed",
    EnterpriseDomainSsoRequired = "enterprise_domain_sso_required",
    EntraTenantNotAllowed = "entra_tenant_not_allowed",
    EntraTidMissing = "entra_tid_missing",
    GithubEmailUnverified = "github_email_unverified",
    GoogleHdMismatch = "google_hd_mismatch",
    IdTokenAlgNotAllowed = "id_token_alg_not_allowed",
    IdTokenAudienceMismatch = "id_token_audience_mismatch",
    IdTokenExpired = "id_token_expired",
    IdTokenInvalid = "id_token_invalid",
    IdTokenIssuerMismatch = "id_token_issuer_mismatch",
    IdTokenKeyUnknown = "id_token_key_unknown",
    IdTokenMissing = "id_token_missing",
    IdTokenNonceMismatch = "id_token_nonce_mismatch",
    IdTokenNotYetValid = "id_token_not_yet_valid",
    IdTokenSignatureInvalid = "id_token_signature_invalid",
    Immutable = "immutable",
    EditConflict = "edit_conflict",
    InternalError = "internal_error",
    InvalidAlg = "invalid_alg",
    InvalidAudience = "invalid_audience",
    InvalidAuthMethod = "invalid_auth_method",
    InvalidBody = "invalid_body",
    InvalidCertificate = "invalid_certificate",
    InvalidClaimRules = "invalid_claim_rules",
    InvalidClient = "invalid_client",
    InvalidClientId = "invalid_client_id",
    InvalidClockSkew = "invalid_clock_skew",
    InvalidConfig = "invalid_config",
    InvalidCursor = "invalid_cursor",
    InvalidDomain = "invalid_domain",
    InvalidEmail = "invalid_email",
    InvalidEventType = "invalid_event_type",
    InvalidGrant = "invalid_grant",
    InvalidGrantTypes = "invalid_grant_types",
    InvalidGroups = "invalid_groups",
    InvalidIdTokenHint = "invalid_id_token_hint",
    InvalidJson = "invalid_json",
    InvalidJwks = "invalid_jwks",
    InvalidLimit = "invalid_limit",
    InvalidMapping = "invalid_mapping",
    InvalidMetadata = "invalid_metadata",
    InvalidName = "invalid_name",
    InvalidPostLogoutRedirectUri = "invalid_post_logout_redirect_uri",
    InvalidQuery = "invalid_query",
    InvalidRedirectUri = "invalid_redirect_uri",
    InvalidRequest = "invalid_request",
    InvalidScimLinkConnection = "invalid_scim_link_connection",
    InvalidScope = "invalid_scope",
    InvalidScopes = "invalid_scopes",
    InvalidSecret = "invalid_secret",
    InvalidSlug = "invalid_slug",
    InvalidStatus = "invalid_status",
    InvalidToken = "invalid_token",
    InvalidTokenHook = "invalid_token_hook",
    InvalidType = "invalid_type",
    InvalidUri = "invalid_uri",
    InvalidUrl = "invalid_url",
    InvalidWebOrigin = "invalid_web_origin",
    IssParameterMismatch = "iss_parameter_mismatch",
    LoginAlreadyUsed = "login_already_used",
    LoginBindingMismatch = "login_binding_mismatch",
    LoginExpired = "login_expired",
    LoginNotAsserted = "login_not_asserted",
    LoginNotFound = "login_not_found",
    LoginNotRouted = "login_not_routed",
    MetadataRefreshFailed = "metadata_refresh_failed",
    MetadataUnreachable = "metadata_unreachable",
    MfaRequiredNotMet = "mfa_required_not_met",
    MfaUnverifiable = "mfa_unverifiable",
    MissingField = "missing_field",
    NoConnection = "no_connection",
    NotFound = "not_found",
    NotRefreshable = "not_refreshable",
    OperatorReadOnly = "operator_read_only",
    OperatorRequired = "operator_required",
    OutOfRange = "out_of_range",
    PayloadTooLarge = "payload_too_large",
    PublicClient = "public_client",
    RateLimited = "rate_limited",
    ReadOnly = "read_only",
    ReservedParameter = "reserved_parameter",
    SamlAudienceMismatch = "saml_audience_mismatch",
    SamlBusy = "saml_busy",
    SamlConditionsMissing = "saml_conditions_missing",
    SamlDecryptionFailed = "saml_decryption_failed",
    SamlDestinationMismatch = "saml_destination_mismatch",
    SamlDtdForbidden = "saml_dtd_forbidden",
    SamlEncryptionRequired = "saml_encryption_required",
    SamlExpired = "saml_expired",
    SamlInResponseToMismatch = "saml_in_response_to_mismatch",
    SamlIssuerMismatch = "saml_issuer_mismatch",
    SamlNotYetValid = "saml_not_yet_valid",
    SamlRecipientMismatch = "saml_recipient_mismatch",
    SamlReplay = "saml_replay",
    SamlResponseMalformed = "saml_response_malformed",
    SamlResponseMissing = "saml_response_missing",
    SamlResponseTooLarge = "saml_response_too_large",
    SamlSignatureAlgorithmNotAllowed = "saml_signature_algorithm_not_allowed",
    SamlSignatureInvalid = "saml_signature_invalid",
    SamlSignatureMissing = "saml_signature_missing",
    SamlSignatureWrapping = "saml_signature_wrapping",
    SamlStatusNotSuccess = "saml_status_not_success",
    SamlSubjectMissing = "saml_subject_missing",
    SamlTenantNotAllowed = "saml_tenant_not_allowed",
    SamlUnsolicitedResponse = "saml_unsolicited_response",
    ServerError = "server_error",
    SlugTaken = "slug_taken",
    StateMismatch = "state_mismatch",
    SubjectMissing = "subject_missing",
    TemporarilyUnavailable = "temporarily_unavailable",
    TokenExchangeFailed = "token_exchange_failed",
    TokenHookFailed = "token_hook_failed",
    TooMany = "too_many",
    TooManyDomains = "too_many_domains",
    Unauthorized = "unauthorized",
    UnauthorizedClient = "unauthorized_client",
    UnknownState = "unknown_state",
    UnknownTenant = "unknown_tenant",
    UnsupportedGrantType = "unsupported_grant_type",
    UnsupportedMediaType = "unsupported_media_type",
    UpstreamDenied = "upstream_denied",
    UpstreamError = "upstream_error",
    UpstreamInvalidResponse = "upstream_invalid_response",
    UpstreamReauthenticationMissing = "upstream_reauthentication_missing",
    UpstreamUnreachable = "upstream_unreachable",
    ConnectionNotTested = "connection_not_tested",
    InvalidIntents = "invalid_intents",
    PortalIntentNotGranted = "portal_intent_not_granted",
    PortalSessionRequired = "portal_session_required",
    SetupLinkExpired = "setup_link_expired",
    SetupLinkRevoked = "setup_link_revoked",
    SetupLinkUnknown = "setup_link_unknown",
    TestSignInFailed = "test_sign_in_failed",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl AsRef<str> for ErrorCode {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn texts_are_unique_snake_case_and_parse_back() {
        let mut seen = std::collections::BTreeSet::new();
        for c in ErrorCode::ALL {
            let s = c.as_str();
            assert!(s.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_'), "{s}");
            assert!(seen.insert(s), "{s} twice");
            assert_eq!(ErrorCode::parse(s), Some(*c));
        }
    }

    /// The SAML core (crate fedgate-saml) names its codes as text; each is a code here, so
    /// `upstream::saml_code` never falls back.
    #[test]
    fn every_saml_code_is_an_error_code() {
        let src = include_str!("../crates/saml/src/validate.rs");
        let start = src.find("pub fn code(&self) -> &'static str {").expect("SamlError::code");
        let body = &src[start..start + src[start..].find("\n    }\n").expect("end of code()")];
        let codes: Vec<&str> = body.split("=> \"").skip(1).filter_map(|r| r.split('"').next()).collect();
        assert!(codes.len() >= 20, "{codes:?}");
        let unknown: Vec<&&str> = codes.iter().filter(|c| ErrorCode::parse(c).is_none()).collect();
        assert!(unknown.is_empty(), "SAML codes that are no ErrorCode: {unknown:?}");
    }

    /// Every code is documented: docs/error-codes.md names it in backticks.
    #[test]
    fn every_code_is_documented() {
        let doc = include_str!("../docs/error-codes.md");
        let missing: Vec<&str> =
            ErrorCode::ALL.iter().map(|c| c.as_str()).filter(|s| !doc.contains(&format!("`{s}`"))).collect();
        assert!(missing.is_empty(), "codes missing from docs/error-codes.md: {missing:?}");
    }
}
