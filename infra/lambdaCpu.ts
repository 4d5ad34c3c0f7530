/**
 * Lambda's CPU share. "At 1,769 MB, a function has the equivalent of one vCPU (one vCPU-second of
 * credits per second)", in proportion to memory from 128 MB to 10,240 MB (AWS Lambda Developer
 * Guide, "Configuring Lambda function memory"). The function sees 2 cores below about 3,009 MB
 * whatever its share, so ONNX Runtime's default (a thread per core it sees) would run 2 intra-op
 * threads on 0.6-1.7 vCPU of credits and spend them on contention.
 */
export const LAMBDA_MB_PER_VCPU = 1769;

export const lambdaVcpuShare = (memoryMb: number): number => memoryMb / LAMBDA_MB_PER_VCPU;

/** Intra-op threads for an embedding function (EMBEDDING_THREADS): one per whole vCPU of its share, at least one. */
export const lambdaIntraOpThreads = (memoryMb: number): number => Math.max(1, Math.floor(lambdaVcpuShare(memoryMb)));
