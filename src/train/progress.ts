import cliProgress from 'cli-progress';
import type { AverageMeter } from './metrics.js';

export type ProgressMode = 'auto' | 'bar' | 'plain' | 'none';

/**
 * Per-loop progress: a bar on a TTY (loss, top-1, images/s, ETA), otherwise the reference's
 * tab-separated ProgressMeter lines every print_freq batches, e.g.
 * `Epoch: [3][  10/5005]\tTime  0.412 ( 0.450)\tData ...\tLoss 4.123 (4.300)\tAcc@1 ...`.
 */
export class Progress {
  private bar?: cliProgress.SingleBar;
  private readonly plain: boolean;
  private started = 0;

  constructor(
    readonly total: number,
    readonly prefix: string,
    readonly meters: AverageMeter[],
    readonly printFreq: number,
    mode: ProgressMode = 'auto',
    private readonly write: (line: string) => void = (l) => process.stdout.write(l + '\n'),
  ) {
    const useBar = mode === 'bar' || (mode === 'auto' && process.stderr.isTTY === true);
    this.plain = !useBar && mode !== 'none';
    if (useBar) {
      this.bar = new cliProgress.SingleBar(
        {
          format: `${prefix} [{bar}] {value}/{total} | loss {loss} | top-1 {top1}{sparsity} | {ips} img/s | ETA {eta_formatted}`,
          barsize: 24,
          hideCursor: true,
          clearOnComplete: false,
          stream: process.stderr,
          etaBuffer: 20,
        },
        cliProgress.Presets.shades_classic,
      );
    }
  }

  private find(name: string): AverageMeter | undefined {
    return this.meters.find((m) => m.name === name);
  }

  /** Batch i (0-based) done; `images` processed so far in this loop. */
  update(i: number, images: number): void {
    if (this.started === 0) this.started = performance.now();
    if (this.bar) {
      const secs = (performance.now() - this.started) / 1000;
      const payload = {
        loss: this.find('Loss')?.avg.toFixed(3) ?? '-',
        top1: this.find('Acc@1')?.avg.toFixed(2) ?? '-',
        ips: secs > 0 ? (images / secs).toFixed(1) : '-',
        sparsity: this.find('Sparsity')?.count ? ` | sparsity ${this.find('Sparsity')!.val.toFixed(2)} %` : '',
      };
      if (i === 0) this.bar.start(this.total, 1, payload);
      else this.bar.update(i + 1, payload);
    } else if (this.plain && i % this.printFreq === 0) {
      this.write(this.line(i));
    }
  }

  /** The reference's ProgressMeter.display(i). */
  line(i: number): string {
    const digits = String(this.total).length;
    return `${this.prefix}[${String(i).padStart(digits)}/${this.total}]\t${this.meters.map(String).join('\t')}`;
  }

  end(): void {
    this.bar?.stop();
  }
}
