/**
 * Getting at the model weights of a read checkpoint: the reference's training checkpoints
 * (`{epoch, arch, state_dict, best_acc1, ..., optimizer}`), dense-compatible ones
 * (`{epoch, arch, state_dict}`) and bare state dicts all come out as one StateDict plus metadata.
 * Key prefixes (`module.`) are left as they are.
 */
import type { HostTensor, StateDict } from '../host-tensor.js';
import { UserError } from '../../util/errors.js';
import { PyDict, isHostTensor, isPlainObject, pyTypeName, type PyValue } from './py-values.js';

export type MetaValue = number | string | boolean | null;

export interface ExtractedCheckpoint {
  stateDict: StateDict;
  /** Top-level scalars other than the state dict (epoch, arch, best_acc1, curr_acc1, ...); ints as numbers. */
  meta: { epoch?: number; arch?: string; best_acc1?: number; best_acc5?: number; [key: string]: MetaValue | undefined };
  /** The optimizer's state_dict when the checkpoint has one (left in pickle form). */
  optimizer?: PyValue;
}

function entriesOf(v: PyValue): [PyValue, PyValue][] | undefined {
  if (v instanceof Map) return [...v.entries()] as [PyValue, PyValue][];
  if (isPlainObject(v) && !isHostTensor(v)) return Object.entries(v);
  return undefined;
}

function looksLikeStateDict(entries: [PyValue, PyValue][]): boolean {
  return entries.length > 0 && entries.every(([k, v]) => typeof k === 'string' && isHostTensor(v));
}

function toStateDict(entries: [PyValue, PyValue][], source: string): StateDict {
  const sd: StateDict = new Map();
  for (const [k, v] of entries) {
    if (typeof k !== 'string') throw new UserError(`${source}: state_dict has a ${pyTypeName(k)} key, expected parameter names`);
    if (!isHostTensor(v)) throw new UserError(`${source}: state_dict entry ${k} is a ${pyTypeName(v)}, expected a tensor`);
    sd.set(k, v as HostTensor);
  }
  return sd;
}

/**
 * Accepts `{state_dict: ...}` (any extra keys become `meta`, `optimizer` is passed through) or a
 * bare state dict (name → tensor). `source` names the file in errors.
 */
export function extractStateDict(obj: PyValue, source = 'checkpoint'): ExtractedCheckpoint {
  const top = entriesOf(obj);
  if (!top) throw new UserError(`${source}: holds a ${pyTypeName(obj)}, expected a dict with a state_dict or a state dict`);
  const sdEntry = top.find(([k]) => k === 'state_dict');
  if (!sdEntry) {
    if (looksLikeStateDict(top)) return { stateDict: toStateDict(top, source), meta: {} };
    const keys = top.slice(0, 8).map(([k]) => String(k)).join(', ');
    throw new UserError(`${source}: no "state_dict" key and not a state dict itself (keys: ${keys}${top.length > 8 ? ', ...' : ''})`);
  }
  const inner = entriesOf(sdEntry[1]);
  if (!inner) throw new UserError(`${source}: "state_dict" is a ${pyTypeName(sdEntry[1])}, expected a dict of tensors`);
  const out: ExtractedCheckpoint = { stateDict: toStateDict(inner, `${source} state_dict`), meta: {} };
  for (const [k, v] of top) {
    if (typeof k !== 'string' || k === 'state_dict') continue;
    if (k === 'optimizer') {
      out.optimizer = v;
    } else if (typeof v === 'bigint') {
      out.meta[k] = Number(v);
    } else if (v === null || typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') {
      out.meta[k] = v;
    }
  }
  return out;
}

/** A StateDict as the OrderedDict torch.save expects, optionally with a `_metadata` attribute. */
export function stateDictToPy(sd: StateDict, metadata?: PyDict): PyDict {
  return new PyDict(sd, { ordered: true, state: metadata ? new PyDict([['_metadata', metadata]]) : undefined });
}
