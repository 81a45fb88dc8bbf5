import * as tf from '../tf.js';
import type { FusedEval } from './fused-eval.js';

/**
 * How a parameter's internal (NHWC-friendly) tensor maps to the PyTorch tensor of the same
 * state_dict entry. Conversion happens only at the I/O boundary (nn/state-dict.ts).
 * - 'conv':      internal [kh, kw, in/groups, out]  <->  torch [out, in/groups, kh, kw]
 * - 'depthwise': internal [kh, kw, C, 1]            <->  torch [C, 1, kh, kw]
 * - 'plain':     same shape and order in both worlds (BN vectors, thresholds, biases)
 */
export type TorchLayout = 'conv' | 'depthwise' | 'plain';

/**
 * Optimizer group a parameter belongs to. Decided by the module that owns it (not by a name
 * substring as in the reference, see README "Differences": quirk 14).
 */
export type ParamGroup = 'bn' | 'threshold' | 'rest';

export interface ParamSpec {
  variable: tf.Variable;
  layout: TorchLayout;
  group: ParamGroup;
}

export interface BufferSpec {
  variable: tf.Variable;
  layout: TorchLayout;
}

/** PyTorch's int64 `num_batches_tracked`: a host-side counter (no tf tensor needed). */
export class Counter {
  constructor(public value = 0) {}
}

export interface NamedParam extends ParamSpec {
  /** Full dotted name without the DataParallel `module.` prefix, e.g. `layer1.0.conv1.weight`. */
  name: string;
  module: Module;
  localName: string;
}

export type StateEntry =
  | { kind: 'param'; name: string; spec: ParamSpec }
  | { kind: 'buffer'; name: string; spec: BufferSpec }
  | { kind: 'counter'; name: string; counter: Counter };

/**
 * A minimal PyTorch-style module: ordered parameters, buffers and children, train/eval mode.
 * Registration order defines the state_dict order, exactly as in torch.nn.Module.
 */
export abstract class Module {
  training = true;
  private readonly params = new Map<string, ParamSpec>();
  private readonly buffers = new Map<string, BufferSpec | Counter>();
  private readonly children = new Map<string, Module>();

  abstract forward(x: tf.Tensor): tf.Tensor;

  /** Output [H, W, C] for an input of [H, W, C], without computing anything (summaries, MACs). */
  abstract inferShape(inShape: [number, number, number]): [number, number, number];

  protected registerParameter(
    name: string,
    value: tf.Tensor,
    layout: TorchLayout = 'plain',
    group: ParamGroup = 'rest',
  ): tf.Variable {
    const variable = tf.variable(value, true);
    value.dispose();
    this.params.set(name, { variable, layout, group });
    return variable;
  }

  protected registerBuffer(name: string, value: tf.Tensor, layout: TorchLayout = 'plain'): tf.Variable {
    const variable = tf.variable(value, false);
    value.dispose();
    this.buffers.set(name, { variable, layout });
    return variable;
  }

  protected registerCounter(name: string): Counter {
    const c = new Counter(0);
    this.buffers.set(name, c);
    return c;
  }

  protected registerModule<M extends Module>(name: string, module: M): M {
    this.children.set(name, module);
    return module;
  }

  namedChildren(): Array<[string, Module]> {
    return [...this.children.entries()];
  }

  /** Pre-order walk over (name, module) pairs; the root has name ''. */
  *namedModules(prefix = ''): Generator<[string, Module]> {
    yield [prefix, this];
    for (const [n, child] of this.children) {
      yield* child.namedModules(prefix === '' ? n : `${prefix}.${n}`);
    }
  }

  *namedParameters(prefix = ''): Generator<NamedParam> {
    for (const [name, mod] of this.namedModules(prefix)) {
      for (const [local, spec] of mod.params) {
        yield { ...spec, name: name === '' ? local : `${name}.${local}`, module: mod, localName: local };
      }
    }
  }

  /** Entries in PyTorch state_dict order: per module (pre-order) its params, then its buffers. */
  *stateEntries(prefix = ''): Generator<StateEntry> {
    for (const [name, mod] of this.namedModules(prefix)) {
      const full = (local: string) => (name === '' ? local : `${name}.${local}`);
      for (const [local, spec] of mod.params) yield { kind: 'param', name: full(local), spec };
      for (const [local, b] of mod.buffers) {
        if (b instanceof Counter) yield { kind: 'counter', name: full(local), counter: b };
        else yield { kind: 'buffer', name: full(local), spec: b };
      }
    }
  }

  trainableVariables(): tf.Variable[] {
    return [...this.namedParameters()].map((p) => p.variable);
  }

  numParameters(): number {
    let n = 0;
    for (const p of this.namedParameters()) n += p.variable.size;
    return n;
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  dispose(): void {
    for (const [, m] of this.namedModules()) {
      for (const p of m.params.values()) p.variable.dispose();
      for (const b of m.buffers.values()) if (!(b instanceof Counter)) b.variable.dispose();
    }
  }
}

/** torch.nn.Sequential: children named '0', '1', ... applied in order. */
export class Sequential extends Module {
  private readonly layers: Module[];

  constructor(...layers: Module[]) {
    super();
    this.layers = layers;
    layers.forEach((l, i) => this.registerModule(String(i), l));
  }

  forward(x: tf.Tensor): tf.Tensor {
    let y = x;
    for (let i = 0; i < this.layers.length; i++) {
      const l = this.layers[i] as Module & { forwardRelu?: (x: tf.Tensor) => tf.Tensor; fusedEval?: FusedEval };
      // eval with a prepared conv → BatchNorm [→ ReLU] (nn/sparse/inference.ts): one fused op
      const f = l.fusedEval;
      if (f && !l.training && f.bn != null && f.bn === this.layers[i + 1]) {
        const relu = (this.layers[i + 2] as { isReLU?: boolean } | undefined)?.isReLU === true;
        y = f.run(y, relu);
        i += relu ? 2 : 1;
        continue;
      }
      // a BatchNorm directly followed by a ReLU runs as one fused op (BatchNormBase.forwardRelu)
      if (l.forwardRelu && (this.layers[i + 1] as { isReLU?: boolean } | undefined)?.isReLU) {
        y = l.forwardRelu(y);
        i++;
      } else {
        y = l.forward(y);
      }
    }
    return y;
  }

  inferShape(s: [number, number, number]): [number, number, number] {
    return this.layers.reduce((acc, l) => l.inferShape(acc), s);
  }
}
