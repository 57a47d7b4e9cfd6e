namespace AotProxy.Inspection;

internal enum InspectionError : byte
{
    None,
    InvalidJson,     // 400 invalid_json
    NotAnObject,     // 400: the body must be a JSON object
    MissingModel,    // 400 param=model
    MissingMaxTokens, // 400 param=max_tokens: the Messages API requires a positive max_tokens
    InvalidField,    // 400: a known field has the wrong type (stream, max_tokens, ...)
    InvalidText,     // 400: model is not valid UTF-8, or escapes a lone surrogate
    InvalidForm,     // 400: a multipart/form-data body the gateway cannot read (the reason is the param)
}
