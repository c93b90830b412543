export { Pasta, killStrayPasta, sweepPastaTemp } from './pasta';
export type { PastaStartOptions } from './pasta';
export { pastaFeatures, parsePastaHelp, cleanPastaOutput, resolvePasta } from './features';
export type { PastaFeatures, PastaOption } from './features';
export { checkPastaOptions, pastaArgs, portSpecs, PASTA_DNS_FORWARD, PASTA_HOST_ADDR } from './args';
export type { PastaUserOptions, PastaTarget } from './args';
