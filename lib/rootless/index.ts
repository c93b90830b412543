export { UserNetns, findSubIdRange } from './userns';
export { checkTunAccess } from './tun';
export type { UserNetnsOptions, IdMapMode, SubIdRange } from './userns';
