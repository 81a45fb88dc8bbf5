import * as tf from '../tf.js';
import type { Module, NamedParam, ParamGroup } from '../nn/module.js';
import type { HostTensor } from '../io/host-tensor.js';
import { hasKernel, SgdUpdate, type SgdUpdateAttrs } from '../backend/fused-kernels.js';

export interface OptimizerOptions {
  optimizer: 'sgd' | 'adam';
  lr: number;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  /** --no-bn-decay: no decay for BatchNorm parameters (all of them, quirk 14 fixed). */
  noBnDecay: boolean;
  /** --st-decay: decay for STR thresholds (default: weightDecay). */
  stDecay?: number | null;
}

interface Slot {
  param: NamedParam;
  group: ParamGroup;
  /** SGD momentum buffer, or Adam's first moment. */
  buf?: tf.Variable;
  /** Adam's second moment. */
  sq?: tf.Variable;
}

const GROUP_ORDER: ParamGroup[] = ['bn', 'threshold', 'rest'];

/**
 * SGD exactly as torch 1.3 (STR-SPEC §6): coupled L2 decay d = g + λp; buf = d on the first
 * step, μ·buf + d after; Nesterov d + μ·buf; p ← p − η·d. Three groups with their own decay:
 * BN parameters, STR thresholds, the rest, assigned by module type rather than by a `bn` name
 * substring (which missed ResNet downsample BNs and all MobileNetV1 BNs, quirk 14).
 * Adam (β 0.9/0.999, ε 1e-8) uses the same groups and coupled decay (the reference passes no
 * decay to Adam so STR thresholds never move, quirk 15).
 */
export class Optimizer {
  readonly slots: Slot[];
  lr: number;
  /** Number of steps taken (Adam bias correction, and "first step" for SGD buffers). */
  steps = 0;
  readonly decay: Record<ParamGroup, number>;

  constructor(model: Module, readonly o: OptimizerOptions) {
    this.lr = o.lr;
    this.decay = {
      bn: o.noBnDecay ? 0 : o.weightDecay,
      threshold: o.stDecay ?? o.weightDecay,
      rest: o.weightDecay,
    };
    const params = [...model.namedParameters()];
    this.slots = GROUP_ORDER.flatMap((g) => params.filter((p) => p.group === g).map((param) => ({ param, group: g })));
  }

  /** Parameter names per group, in the order of torch's param_groups (bn, threshold, rest). */
  groups(): Record<ParamGroup, string[]> {
    const out: Record<ParamGroup, string[]> = { bn: [], threshold: [], rest: [] };
    for (const s of this.slots) out[s.group].push(s.param.name);
    return out;
  }

  /** Apply one update from gradients keyed by variable name (tf.variableGrads' output). */
  step(grads: Record<string, tf.Tensor>): void {
    this.steps++;
    const { momentum: mu, nesterov } = this.o;
    const lr = this.lr;
    if (this.o.optimizer === 'sgd' && hasKernel(SgdUpdate)) {
      this.fusedSgdStep(grads);
      return;
    }
    tf.tidy(() => {
      for (const s of this.slots) {
        const p = s.param.variable;
        const g = grads[p.name];
        if (!g) continue; // like torch: parameters without a gradient are skipped entirely
        const lambda = this.decay[s.group];
        const d = lambda !== 0 ? tf.add(g, tf.mul(p, lambda)) : g;
        if (this.o.optimizer === 'adam') {
          this.adam(s, d, lr);
          continue;
        }
        let upd = d;
        if (mu !== 0) {
          if (!s.buf) s.buf = tf.variable(d, false);
          else s.buf.assign(tf.add(tf.mul(s.buf, mu), d));
          upd = nesterov ? tf.add(d, tf.mul(s.buf, mu)) : s.buf;
        }
        p.assign(tf.sub(p, tf.mul(upd, lr)));
      }
    });
  }

  /** The same SGD step as one native kernel per parameter (bit-identical: same float32 op order). */
  private fusedSgdStep(grads: Record<string, tf.Tensor>): void {
    const { momentum, nesterov } = this.o;
    tf.tidy(() => {
      for (const s of this.slots) {
        const p = s.param.variable;
        const g = grads[p.name];
        if (!g) continue;
        const first = s.buf == null;
        const attrs: SgdUpdateAttrs = { lr: this.lr, momentum, weightDecay: this.decay[s.group], nesterov, first };
        const inputs: tf.NamedTensorMap = first || momentum === 0 ? { p, g } : { p, g, buf: s.buf! };
        const [np, nb] = tf.engine().runKernel(SgdUpdate, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
        p.assign(np);
        if (nb) {
          if (s.buf) s.buf.assign(nb);
          else s.buf = tf.variable(nb, false);
        }
      }
    });
  }

  private adam(s: Slot, d: tf.Tensor, lr: number): void {
    const [b1, b2, eps] = [0.9, 0.999, 1e-8];
    if (!s.buf) s.buf = tf.variable(tf.zerosLike(d), false);
    if (!s.sq) s.sq = tf.variable(tf.zerosLike(d), false);
    s.buf.assign(tf.add(tf.mul(s.buf, b1), tf.mul(d, 1 - b1)));
    s.sq.assign(tf.add(tf.mul(s.sq, b2), tf.mul(tf.square(d), 1 - b2)));
    const c1 = 1 - Math.pow(b1, this.steps);
    const c2 = 1 - Math.pow(b2, this.steps);
    const denom = tf.add(tf.div(tf.sqrt(s.sq), Math.sqrt(c2)), eps);
    const p = s.param.variable;
    p.assign(tf.sub(p, tf.mul(tf.div(s.buf, denom), lr / c1)));
  }

  /**
   * Optimizer state as host tensors keyed `<param name>.<momentum_buffer|exp_avg|exp_avg_sq>`
   * in the parameter's PyTorch layout; `toHost` converts an internal tensor for a param.
   */
  stateTensors(toHost: (t: tf.Tensor, p: NamedParam) => HostTensor): Map<string, HostTensor> {
    const out = new Map<string, HostTensor>();
    for (const s of this.slots) {
      if (this.o.optimizer === 'adam') {
        if (s.buf) out.set(`${s.param.name}.exp_avg`, toHost(s.buf, s.param));
        if (s.sq) out.set(`${s.param.name}.exp_avg_sq`, toHost(s.sq, s.param));
      } else if (s.buf) out.set(`${s.param.name}.momentum_buffer`, toHost(s.buf, s.param));
    }
    return out;
  }

  /** Restore what stateTensors saved; `fromHost` converts back to the internal layout. */
  loadStateTensors(state: Map<string, HostTensor>, steps: number, fromHost: (h: HostTensor, p: NamedParam) => tf.Tensor): void {
    this.steps = steps;
    for (const s of this.slots) {
      const load = (key: string) => {
        const h = state.get(`${s.param.name}.${key}`);
        if (!h) return undefined;
        const t = fromHost(h, s.param);
        const v = tf.variable(t, false);
        t.dispose();
        return v;
      };
      s.buf?.dispose();
      s.sq?.dispose();
      s.buf = load(this.o.optimizer === 'adam' ? 'exp_avg' : 'momentum_buffer');
      s.sq = this.o.optimizer === 'adam' ? load('exp_avg_sq') : undefined;
    }
  }

  dispose(): void {
    for (const s of this.slots) {
      s.buf?.dispose();
      s.sq?.dispose();
    }
  }
}
