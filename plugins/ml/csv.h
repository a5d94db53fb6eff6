// CSV reading and writing for the ML plugins: RFC 4180 (quoted fields, doubled quotes,
// CRLF), a header row, and the file line of every record so that errors can point at it.
#ifndef SLUICE_PLUGINS_ML_CSV_H_
#define SLUICE_PLUGINS_ML_CSV_H_

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace sluice::ml {

struct CsvTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;  // every row has header.size() cells
  std::vector<size_t> lines;                   // file line (1-based) where each row starts

  // Index of column `name`, or -1.
  int Column(const std::string& name) const;
};

// Reads `path`. Throws std::runtime_error naming the file and line for a file that cannot
// be read, an unterminated quote or a row whose cell count differs from the header's.
CsvTable ReadCsv(const std::filesystem::path& path);

// Writes `table` (header and rows; `lines` is ignored), quoting cells that need it.
void WriteCsv(const std::filesystem::path& path, const CsvTable& table);

// Parses a number the way CSV data spells them ("3", "-0.5", "1e-3"); false for anything
// else, including an empty cell.
bool ParseNumber(const std::string& text, double* value);

}  // namespace sluice::ml

#endif  // SLUICE_PLUGINS_ML_CSV_H_
