import { execSync } from 'node:child_process';
import os from 'node:os';

export interface MachineInfo {
  date: string;
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  platform: string;
  /** 1-minute load average when the run started and ended: other work on the machine skews figures. */
  loadAverage: { start: number; end?: number };
  gitCommit: string;
  /** Whether the working tree had uncommitted changes at the start. */
  gitDirty: boolean;
}

export function machineInfo(): MachineInfo {
  const git = (args: string) => {
    try {
      return execSync(`git ${args}`, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return '';
    }
  };
  return {
    date: new Date().toISOString(),
    cores: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    loadAverage: { start: Math.round(os.loadavg()[0]! * 100) / 100 },
    gitCommit: git('rev-parse --short HEAD') || 'unknown',
    gitDirty: git('status --porcelain --untracked-files=no') !== '',
  };
}
