namespace AotProxy.Admin.Contracts;

// Guaranteed and in_use count the bucket policy's slots (0 under the other policies).
internal sealed record QueueLevelReport(int Level, int Waiting, double OldestWaitSeconds, int Guaranteed, int InUse);
