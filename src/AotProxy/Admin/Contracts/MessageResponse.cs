namespace AotProxy.Admin.Contracts;

// What a change of the admin API that has nothing else to show answers: what it did.
internal sealed record MessageResponse(string Message);
