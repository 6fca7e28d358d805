//! The development connector: a confirmation page on fedgate itself that signs in the person
//! named by `login_hint` (or the connection's default user). Refused unless dev mode is on.
use super::{
    CallbackPayload, Completed, Connector, ConnectorState, LoginAction, LoginContext, LoginStart, UpstreamError,
    UpstreamIdentity,
};
use serde::{Deserialize, Serialize};

/// The `dev` connection's configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DevConfig {
    /// Email of the person signed in when the app sends no `login_hint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_email: Option<String>,
    /// Display name for that person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_name: Option<String>,
    /// Groups every dev login gets.
    #[serde(default)]
    pub groups: Vec<String>,
    /// MFA for logins through this connection (`inherit`, `off`, `required`).
    #[serde(default, skip_serializing_if = "crate::claims::mfa::MfaOverride::is_inherit")]
    pub mfa: crate::claims::mfa::MfaOverride,
    /// The RFC 8176 `amr` values the confirmation page asserts (default `["user"]`): set
    /// `["pwd", "mfa"]` to try MFA policies in development.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
}

pub struct DevConnector {
    pub config: DevConfig,
    pub dev_mode: bool,
}

impl DevConnector {
    /// The email the confirmation page will sign in.
    pub fn email_for(&self, login_hint: Option<&str>) -> Option<String> {
        login_hint
            .and_then(crate::claims::normalize_email)
            .or_else(|| self.config.default_email.as_deref().and_then(crate::claims::normalize_email))
    }
}

#[async_trait::async_trait]
impl Connector for DevConnector {
    async fn begin(&self, login: &LoginContext) -> Result<LoginStart, UpstreamError> {
        if !self.dev_mode {
            return Err(UpstreamError::DevModeOff);
        }
        let email = self.email_for(login.login_hint.as_deref()).ok_or_else(|| {
            UpstreamError::Misconfigured("no login_hint was sent and the dev connection has no default_email".into())
        })?;
        Ok(LoginStart {
            action: LoginAction::Redirect(format!("{}/sso/dev/{}", login.issuer, login.login_id)),
            state: ConnectorState::Dev { email },
        })
    }

    async fn complete(
        &self,
        _login: &LoginContext,
        state: &ConnectorState,
        payload: CallbackPayload,
    ) -> Result<Completed, UpstreamError> {
        if !self.dev_mode {
            return Err(UpstreamError::DevModeOff);
        }
        match payload.params.get("action").map(String::as_str) {
            Some("approve") => {}
            Some("deny") => return Err(UpstreamError::Denied(None)),
            _ => return Err(UpstreamError::InvalidResponse("missing action".into())),
        }
        let ConnectorState::Dev { email } = state.clone() else {
            return Err(UpstreamError::InvalidResponse("no email in connector state".into()));
        };
        let name = if self.config.default_email.as_deref().and_then(crate::claims::normalize_email).as_deref()
            == Some(email.as_str())
        {
            self.config.default_name.clone()
        } else {
            None
        };
        // Names: from the configured default name for the default user, else from the email's
        // local part ("bob.builder" -> "Bob Builder").
        let (given, family) = match &name {
            Some(n) => {
                let mut parts = n.splitn(2, ' ');
                (parts.next().map(str::to_string), parts.next().map(str::to_string))
            }
            None => {
                let local = email.split('@').next().unwrap_or_default().to_string();
                let mut words = local.split(['.', '_', '-']).filter(|w| !w.is_empty()).map(capitalize);
                (words.next(), words.next())
            }
        };
        let name = name.or_else(|| match (&given, &family) {
            (Some(g), Some(f)) => Some(format!("{g} {f}")),
            (Some(g), None) => Some(g.clone()),
            _ => None,
        });
        Ok(Completed::identity(UpstreamIdentity {
            subject: format!("dev|{email}"),
            email: Some(email),
            email_verified: true,
            name,
            given_name: given,
            family_name: family,
            groups: self.config.groups.clone(),
            amr: if self.config.amr.is_empty() { vec!["user".into()] } else { self.config.amr.clone() },
            attributes: serde_json::Value::Null,
            // The confirmation page is the authentication: the login flow records it as now.
            auth_time: None,
        }))
    }
}

fn capitalize(w: &str) -> String {
    let mut c = w.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}
