//! RawProvider → Provider: the preset filled in, then overridden field by
//! field; every problem refused with its JSON path.

use super::PolicyError;
use crate::provider::preset::{Preset, AZURE_API_VERSION};
use crate::provider::raw::{RawAuth, RawClients, RawProvider};
use crate::provider::url::BaseUrl;
use crate::provider::{Auth, Clients, Provider};

pub fn compile_providers(raw: &[(String, RawProvider)]) -> Result<Vec<Provider>, PolicyError> {
    let mut out: Vec<Provider> = Vec::with_capacity(raw.len());
    for (name, provider) in raw {
        let path = format!("providers.{name}");
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(PolicyError::new(
                path,
                "a provider name is its Envoy cluster's name: letters, digits, '-', '_' or '.'",
            ));
        }
        out.push(compile_provider(name, provider, &path)?);
    }
    Ok(out)
}

fn compile_provider(name: &str, raw: &RawProvider, path: &str) -> Result<Provider, PolicyError> {
    let preset = match &raw.preset {
        None => None,
        Some(preset) => Some(Preset::find(preset).ok_or_else(|| {
            PolicyError::new(
                format!("{path}.preset"),
                format!(
                    "unknown preset {preset:?} (expected one of {})",
                    Preset::names()
                ),
            )
        })?),
    };
    let base_url_text = raw
        .base_url
        .as_deref()
        .or(preset.and_then(|p| p.base_url))
        .ok_or_else(|| match preset {
            Some(p) => PolicyError::new(
                format!("{path}.base_url"),
                format!(
                    "the {} preset needs a base_url (e.g. https://RESOURCE.openai.azure.com)",
                    p.name
                ),
            ),
            None => PolicyError::new(format!("{path}.base_url"), "required without a preset"),
        })?;
    let base_url = BaseUrl::parse(base_url_text)
        .map_err(|e| PolicyError::new(format!("{path}.base_url"), e))?;
    let auth = match &raw.auth {
        None => None,
        Some(auth) => Some(compile_auth(auth, preset, &format!("{path}.auth"))?),
    };
    let mut headers: Vec<(String, String)> = preset
        .map(|p| {
            p.headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default();
    for (header, value) in raw.headers.iter().flatten() {
        let at = format!("{path}.headers.{header}");
        let header = header_name(header).ok_or_else(|| {
            PolicyError::new(&at, format!("{header:?} is not a valid header name"))
        })?;
        let value = value
            .as_str()
            .filter(|v| v.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)))
            .ok_or_else(|| PolicyError::new(&at, "must be a string of printable ASCII"))?;
        if header.starts_with(':') || header == "host" {
            return Err(PolicyError::new(
                at,
                "Host and pseudo-headers come from base_url",
            ));
        }
        headers.retain(|(n, _)| n != &header);
        headers.push((header, value.to_string()));
    }
    let ca_file = raw.tls.as_ref().and_then(|t| t.ca_file.clone());
    if ca_file.is_some() && !base_url.tls {
        return Err(PolicyError::new(
            format!("{path}.tls.ca_file"),
            "set for an http:// base_url: TLS is used only with https://",
        ));
    }
    let deployments = match (preset.is_some_and(|p| p.deployments), &raw.api_version) {
        (true, version) => Some(
            version
                .clone()
                .unwrap_or_else(|| AZURE_API_VERSION.to_string()),
        ),
        (false, None) => None,
        (false, Some(_)) => {
            return Err(PolicyError::new(
                format!("{path}.api_version"),
                "only the azure_openai preset takes an api_version",
            ))
        }
    };
    if let Some(version) = &deployments {
        if version.is_empty()
            || !version
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(PolicyError::new(
                format!("{path}.api_version"),
                "must be like 2024-10-21",
            ));
        }
    }
    Ok(Provider {
        name: name.to_string(),
        preset,
        base_url,
        auth,
        headers,
        ca_file,
        deployments,
    })
}

fn compile_auth(raw: &RawAuth, preset: Option<&Preset>, path: &str) -> Result<Auth, PolicyError> {
    let check_file = |file: &str, at: String| -> Result<(String, String), PolicyError> {
        if file.trim().is_empty() {
            return Err(PolicyError::new(at, "must name a key file"));
        }
        Ok((file.to_string(), at))
    };
    match (&raw.bearer_file, &raw.header, &raw.file) {
        (Some(file), None, None) => {
            let (file, file_path) = check_file(file, format!("{path}.bearer_file"))?;
            Ok(Auth { header: "authorization".into(), prefix: "Bearer ", file, file_path })
        }
        (None, Some(header), Some(file)) => {
            let header = header_name(header).ok_or_else(|| {
                PolicyError::new(format!("{path}.header"), format!("{header:?} is not a valid header name"))
            })?;
            let (file, file_path) = check_file(file, format!("{path}.file"))?;
            Ok(Auth { header, prefix: "", file, file_path })
        }
        (None, None, Some(file)) => {
            let (header, bearer) = preset.and_then(|p| p.auth).ok_or_else(|| {
                PolicyError::new(
                    path,
                    "{\"file\": ...} alone needs a preset that names the key's header: set {\"header\": NAME, \"file\": PATH} or {\"bearer_file\": PATH}",
                )
            })?;
            let (file, file_path) = check_file(file, format!("{path}.file"))?;
            Ok(Auth {
                header: header.to_string(),
                prefix: if bearer { "Bearer " } else { "" },
                file,
                file_path,
            })
        }
        _ => Err(PolicyError::new(
            path,
            "set {\"bearer_file\": PATH}, {\"header\": NAME, \"file\": PATH}, or {\"file\": PATH} with a preset",
        )),
    }
}

pub fn compile_clients(raw: Option<&RawClients>) -> Result<Option<Clients>, PolicyError> {
    let Some(raw) = raw else { return Ok(None) };
    if raw.keys_file.trim().is_empty() {
        return Err(PolicyError::new("clients.keys_file", "must name a file"));
    }
    Ok(Some(Clients {
        keys_file: raw.keys_file.clone(),
    }))
}

/// A header name as Envoy accepts it, lower-cased.
fn header_name(name: &str) -> Option<String> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    valid.then(|| name.to_ascii_lowercase())
}
