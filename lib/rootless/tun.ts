/**
 * User-mode networking helpers (slirp4netns, pasta) run by an unprivileged
 * caller open /dev/net/tun with the caller's own uid: say so before spawning
 * one, rather than relay the helper's vaguer failure.
 */
import { accessSync, constants as fsc } from 'node:fs';

import { PodnetError } from '../errors';

export function checkTunAccess(helper: string): void {
  try {
    accessSync('/dev/net/tun', fsc.R_OK | fsc.W_OK);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new PodnetError(
      e.code ?? 'EACCES',
      `${helper} needs read-write access to /dev/net/tun (${e.code}); distributions make it mode 0666 via udev, or grant the user an ACL`,
      {
        path: '/dev/net/tun',
        syscall: 'access',
      },
    );
  }
}
