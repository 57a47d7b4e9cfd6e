namespace AotProxy.Configuration.Validation;

// [forwarding]: the upstream timeouts.
internal static class ForwardingRules
{
    public static ForwardingModel Validate(ValidationContext context, ForwardingConfig forwarding)
    {
        context.Unknown("forwarding", forwarding.Unknown);
        return new ForwardingModel(
            context.Positive("forwarding.connect_timeout", forwarding.ConnectTimeout),
            context.Positive("forwarding.activity_timeout", forwarding.ActivityTimeout));
    }
}
