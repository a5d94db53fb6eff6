// CSV reading and writing for the ML plugins: RFC 4180 (quoted fields, doubled quotes,
// CRLF), a header row, and the file line of every record so that errors can point at it.
#ifndef SLUICE_PLUGINS_ML_CSV_H_
#define SLUICE_PLUGINS_ML_CSV_H_

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace sluice::ml {

struct CsvTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;  // every row has header.size() cells
  std::vector<size_t> lines;                   // file line (1-based) where each row starts
  std::vector<std::string> files;              // set by ReadCsvFiles: the files read
  std::vector<uint32_t> file_of;               // set by ReadCsvFiles: index into files per row

  // Index of column `name`, or -1.
  int Column(const std::string& name) const;
  // Where row `row` is, for messages: "12", or "batch.csv:12" when several files were read.
  std::string Where(size_t row) const;
};

// Reads `path`. Throws std::runtime_error naming the file and line for a file that cannot
// be read, an unterminated quote or a row whose cell count differs from the header's.
CsvTable ReadCsv(const std::filesystem::path& path);

// Reads several files with the same header as one table (rows in file order). Throws
// naming the file whose header differs.
CsvTable ReadCsvFiles(const std::vector<std::filesystem::path>& paths);

// Writes `table` (header and rows; `lines` is ignored), quoting cells that need it.
void WriteCsv(const std::filesystem::path& path, const CsvTable& table);

// Parses a number the way CSV data spells them ("3", "-0.5", "1e-3"); false for anything
// else, including an empty cell.
bool ParseNumber(const std::string& text, double* value);

}  // namespace sluice::ml

#endif  // SLUICE_PLUGINS_ML_CSV_H_
