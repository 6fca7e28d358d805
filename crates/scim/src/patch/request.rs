//! Request parsing: the PatchOp body, its operations and their limits.
use serde_json::Value;

use super::{
    PatchError, PatchOpKind, PatchOperation, PatchPath, PatchRequest, MAX_OPERATIONS, MAX_VALUE_DEPTH, PATCH_OP_SCHEMA,
};
use crate::json::get_ci;

/// Parses a PatchOp request body from raw bytes.
pub fn parse_request_slice(body: &[u8]) -> Result<PatchRequest, PatchError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| PatchError::InvalidSyntax(format!("request body is not valid JSON: {e}")))?;
    parse_request(&value)
}

/// Parses a PatchOp request body: `schemas` must contain [`PATCH_OP_SCHEMA`]
/// and `Operations` must be a non-empty array of at most [`MAX_OPERATIONS`]
/// objects with `op`, optional `path` and `value` (keys matched
/// case-insensitively).
pub fn parse_request(body: &Value) -> Result<PatchRequest, PatchError> {
    let obj = body.as_object().ok_or_else(|| PatchError::InvalidSyntax("request body must be a JSON object".into()))?;
    let has_schema = get_ci(obj, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().filter_map(Value::as_str).any(|s| s.eq_ignore_ascii_case(PATCH_OP_SCHEMA)));
    if !has_schema {
        return Err(PatchError::InvalidSyntax(format!("\"schemas\" must contain \"{PATCH_OP_SCHEMA}\"")));
    }
    let ops = get_ci(obj, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| PatchError::InvalidSyntax("\"Operations\" must be an array of operations".into()))?;
    if ops.is_empty() {
        return Err(PatchError::InvalidSyntax("\"Operations\" must contain at least one operation".into()));
    }
    if ops.len() > MAX_OPERATIONS {
        return Err(PatchError::TooManyOperations { count: ops.len(), max: MAX_OPERATIONS });
    }
    let operations = ops
        .iter()
        .enumerate()
        .map(|(i, op)| parse_operation(op).map_err(|e| e.in_operation(i)))
        .collect::<Result<_, _>>()?;
    Ok(PatchRequest { operations })
}

fn parse_operation(op: &Value) -> Result<PatchOperation, PatchError> {
    let obj = op.as_object().ok_or_else(|| PatchError::InvalidSyntax("an operation must be a JSON object".into()))?;
    let name = get_ci(obj, "op")
        .and_then(Value::as_str)
        .ok_or_else(|| PatchError::InvalidSyntax("\"op\" must be a string".into()))?;
    let kind = PatchOpKind::from_name(name).ok_or_else(|| {
        PatchError::InvalidSyntax(format!("unknown op \"{}\": expected add, replace or remove", truncate(name)))
    })?;
    let path = match get_ci(obj, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(
            PatchPath::parse(s)
                .map_err(|e| PatchError::InvalidPath(format!("invalid path \"{}\": {e}", truncate(s))))?,
        ),
        Some(_) => return Err(PatchError::InvalidSyntax("\"path\" must be a string".into())),
    };
    let value = get_ci(obj, "value").cloned();
    let op = PatchOperation { op: kind, path, value };
    validate_operation(&op)?;
    Ok(op)
}

pub(super) fn validate_operation(op: &PatchOperation) -> Result<(), PatchError> {
    if op.op != PatchOpKind::Remove && op.value.is_none() {
        return Err(PatchError::InvalidValue(format!("\"{}\" requires a \"value\"", op.op.as_str())));
    }
    if op.op == PatchOpKind::Remove && op.path.is_none() {
        return Err(PatchError::NoTarget("\"remove\" requires a \"path\"".into()));
    }
    if op.path.is_none() && op.op != PatchOpKind::Remove && !op.value.as_ref().is_some_and(Value::is_object) {
        return Err(PatchError::InvalidValue("an operation without \"path\" requires an object \"value\"".into()));
    }
    if op.value.as_ref().is_some_and(|v| exceeds_depth(v, MAX_VALUE_DEPTH)) {
        return Err(PatchError::InvalidValue(format!("\"value\" is nested deeper than {MAX_VALUE_DEPTH} levels")));
    }
    Ok(())
}

pub(super) fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Whether `v` nests deeper than `max` (iterative; never recurses).
fn exceeds_depth(v: &Value, max: usize) -> bool {
    let mut stack = vec![(v, 1usize)];
    while let Some((v, d)) = stack.pop() {
        if d > max {
            return true;
        }
        match v {
            Value::Array(a) => stack.extend(a.iter().map(|c| (c, d + 1))),
            Value::Object(o) => stack.extend(o.values().map(|c| (c, d + 1))),
            _ => {}
        }
    }
    false
}
