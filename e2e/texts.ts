/** Distinctive documents for datastore tests: words no training text contains, so a hit is no accident. */
export const LIGHTHOUSE =
  'The zebrafish lighthouse of Qortuvan was painted violet by the harbour guild in 1911. ' +
  'Its keeper, Ilsabet Morrow, kept a logbook of every passing ship in green ink and fed the gulls on Sundays. ' +
  'When the fog horn of Qortuvan cracked in the winter of 1923, the guild replaced it with a brass bell from Wexley.\n';

export const HURRICANE =
  'Hurricane Bellamy made landfall near the town of Port Wexley on a humid Tuesday, flooding the saltworks ' +
  'and the old tram depot before turning north towards the Ormsby marshes. The storm surge reached the cathedral steps, ' +
  'and the tram company did not run again until the spring.\n';

export const ORCHARD =
  'In the quince orchards of Vell Tarrow the growers prune their trees by moonlight, a custom they trace to the ' +
  'drought of 1847, when the cooler nights kept the sap from bleeding. The Tarrow quince fair still opens at midnight.\n';

export function textFile(name: string, text: string) {
  return { name, mimeType: 'text/plain', buffer: Buffer.from(text, 'utf8') };
}
