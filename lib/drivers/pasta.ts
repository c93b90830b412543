/**
 * `pasta`: user-mode networking by pasta (passt project), the default of
 * rootless Podman 5 (containers/common libnetwork/pasta). pasta copies the
 * host's addresses and routes onto the namespace's interface (`--config-net`)
 * and forwards published ports itself (`-t`/`-u`), so no forwarder runs.
 * Root callers get it too: pasta is kept root (`--runas 0:0`) so it can enter
 * the namespace (lib/pasta/args.ts).
 */
import { mkdirSync } from 'node:fs';

import { Pasta, checkPastaOptions, killStrayPasta, pastaArgs, pastaFeatures } from '../pasta';
import { checkPortMappings, resolveHostPorts, toPortMappings } from '../ports';
import { checkTunAccess } from '../rootless/tun';
import { isRoot } from '../runtime/options';
import type { SandboxState } from '../runtime/state';
import type { DriverCall, NetworkDriver } from './driver';
import { UserModeDriver, recordUserMode, stopHelper } from './helpers';

export class PastaDriver extends UserModeDriver implements NetworkDriver {
  readonly name = 'pasta';
  readonly #tmpDir?: string;

  constructor(binary?: string, tmpDir?: string) {
    super(binary);
    this.#tmpDir = tmpDir;
  }

  /** A missing pasta, options it does not know, ports it cannot forward, no access to /dev/net/tun: refused before anything exists. */
  async validate(state: SandboxState): Promise<void> {
    if (!isRoot()) checkTunAccess('pasta');
    const features = await pastaFeatures(this.binary);
    const user = checkPastaOptions(features, state.networkOptions);
    const ports = await resolveHostPorts(checkPortMappings(state.portMappings));
    pastaArgs(features, user, ports, { netns: '/', pidFile: '/', root: isRoot() });
    state.portMappings = toPortMappings(ports);
  }

  async setUp(call: DriverCall): Promise<void> {
    const { state } = call;
    if (this.#tmpDir) mkdirSync(this.#tmpDir, { recursive: true, mode: 0o700 });
    const pasta = await Pasta.start({
      netns: state.netnsPath!,
      userns: state.usernsPath,
      binary: this.binary,
      options: state.networkOptions,
      portMappings: state.portMappings,
      tmpDir: this.#tmpDir,
    });
    await recordUserMode(call, 'pasta', 'pasta', pasta);
  }

  async tearDown(call: DriverCall): Promise<void> {
    const recorded = call.state.helpers.pasta !== undefined;
    await stopHelper(call, 'pasta');
    // An owner killed between pasta's start and the saved state left it unrecorded.
    if (!recorded && call.state.netnsPath) await killStrayPasta(call.state.netnsPath);
  }
}
