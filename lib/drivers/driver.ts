/**
 * The network driver interface: one driver per network mode, picked by the
 * runtime, as netavark picks a `NetworkDriver` (validate, setup, teardown) by
 * a network's driver name (netavark src/network/driver.rs, get_network_driver).
 *
 * The runtime owns the sandbox's lifecycle: state on disk, the lock, the
 * namespace when the driver asks for one (`namespace: 'own'`), rollback and
 * teardown ordering. A driver only gives that namespace its network and takes
 * it away again, recording in `state` whatever a fresh process needs to undo
 * it after a crash.
 */
import type { PodnetError } from '../errors';
import type { NativeAttachment } from '../addon';
import type { NetNS } from '../netns';
import type { HelperName, SandboxState } from '../runtime/state';
import type { HelperExit } from '../spawn';

/** A helper process this process started for a sandbox (slirp4netns, pasta, the forwarder, a user-namespace holder). */
export interface LiveHelper {
  readonly pid: number;
  /** Settles when the process has exited and been reaped (its pidfd: at once). */
  readonly exited: Promise<HelperExit>;
  /** What it wrote so far (read when it dies unasked). */
  output(): string;
  stop(): Promise<void>;
}

/** What this process holds for a sandbox; the state on disk covers the rest. */
export interface LiveHandles {
  netns?: NetNS;
  helpers: Map<HelperName, LiveHelper>;
  /** Told when a helper still in `helpers` exits (one taken out first, by stopHelper, is a stop, not a death). */
  onHelperExit?: (name: HelperName, helper: LiveHelper, exit: HelperExit) => void;
}

/** One set-up or teardown of a sandbox, as a driver sees it. */
export interface DriverCall {
  readonly state: SandboxState;
  readonly live: LiveHandles;
  /** Address and MAC for this start only (a restore, `restartNetwork`), else the static ones. */
  readonly requested: { ip?: string; mac?: string };
  /** Writes `state` to disk: call it once something exists that teardown must find. */
  save(): Promise<void>;
  /**
   * Set for a forced teardown (`podman rm -f`): a driver reports here what it
   * could not undo, instead of failing, so the sandbox can go anyway.
   */
  readonly forced?: { notUndone: PodnetError[] };
}

export interface NetworkDriver {
  /** The mode's name, as a user writes it ('bridge', 'slirp4netns', ...), for messages. */
  readonly name: string;
  /**
   * Where the sandbox's network namespace comes from: 'own' (the runtime makes
   * one, with `lo` up, before `setUp`, and removes it after `tearDown`), 'host'
   * (none: the host's network) or 'joined' (the driver finds an existing one).
   */
  readonly namespace: 'own' | 'host' | 'joined';
  /** Whether an unprivileged caller can use it. */
  readonly unprivileged: boolean;
  /** Whether it can publish ports, take a static IP/MAC, take network options. */
  readonly accepts: { portMappings: boolean; staticAddress: boolean; networkOptions: boolean };
  /**
   * Whether its sandboxes can start from a warm namespace of a pool (see
   * lib/runtime/pool): the namespace is all the set-up needs ahead of time.
   */
  readonly poolable?: boolean;
  /**
   * Set-up from a warm entry whose attachment the pool made ahead (native
   * networks): only what is the request's own (its ports). Absent: `setUp`.
   */
  setUpWarm?(call: DriverCall, attachment: NativeAttachment): Promise<void>;
  /**
   * Mode-specific checks of a new sandbox, before anything is created; may
   * normalise `state` (resolve host ports, parse options). Throws PodnetError.
   * `requested` is the address and MAC of this start (see DriverCall).
   */
  validate(state: SandboxState, requested: { ip?: string; mac?: string }): Promise<void>;
  /** Gives the namespace its network. On failure the runtime calls `tearDown`. */
  setUp(call: DriverCall): Promise<void>;
  /** Takes it away: best-effort, repeatable, and it works from a fresh process with only the state. */
  tearDown(call: DriverCall): Promise<void>;
  /** Sets the network up again in the same namespace (new address, same ports); absent when a mode has nothing to restart. */
  restart?(call: DriverCall): Promise<void>;
}
