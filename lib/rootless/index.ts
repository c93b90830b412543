export { UserNetns, findSubIdRange } from './userns';
export type { UserNetnsOptions, IdMapMode, SubIdRange } from './userns';
